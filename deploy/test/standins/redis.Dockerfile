# Stand-in for redis:7 (deploy/test/base-images.sh): Debian bookworm's Redis 7.0, with the
# real image's behaviour that matters here: data in /data, reachable from other containers.
FROM porchlight-standin/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
