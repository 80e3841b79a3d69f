# Stand-in tagged postgres:16 (deploy/test/base-images.sh): Debian bookworm has PostgreSQL 15,
# which Porchlight supports too (CI's own database is 15). The label says what it is; it only
# ever exists in the deploy test's engine. The entrypoint does what the real one does with
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on an empty data directory.
FROM porchlight-standin/debian:bookworm
RUN mkdir -p /etc/postgresql-common \
    && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/*
LABEL org.porchlight.stand-in="PostgreSQL 15 from Debian bookworm, tagged postgres:16"
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
