# Stand-in for caddy:2 (deploy/test/base-images.sh): Debian bookworm's Caddy 2.6, laid out as
# the real image (config in /etc/caddy, state in /data and /config, wget for the health check).
FROM porchlight-standin/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       caddy wget >/dev/null \
    && rm -rf /var/lib/apt/lists/*
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
WORKDIR /srv
EXPOSE 80 443 443/udp 2019
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
