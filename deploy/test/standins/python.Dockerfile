# Stand-in for python:3.11-slim (deploy/test/base-images.sh), from Debian bookworm's Python
# 3.11 in a virtualenv on PATH, as the real image has its own Python in /usr/local: `python`,
# `pip` and the installed scripts (celery) are found the same way. GNU dbm as the real image has
# it: Celery beat's schedule is a shelve, which the beat health check watches being written.
FROM porchlight-standin/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       python3 python3-venv python3-gdbm passwd >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python
# pip reads certifi's bundle, not the system's: name the system one, which trusts the host's
# own certificate authorities (an intercepting HTTPS proxy's).
ENV PATH=/usr/local/python/bin:$PATH \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LANG=C.UTF-8
CMD ["python3"]
