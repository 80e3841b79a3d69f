#!/bin/sh
# One web process: uvicorn serving portal.asgi (HTTP and WebSockets) on $PORT. uvicorn was
# chosen over daphne and granian by bench/servers.py (docs/performance.md).
#
# Forwarded headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from the
# addresses in FORWARDED_ALLOW_IPS, the reverse proxy's, which Django reads too; unset,
# from nobody. WEB_CONCURRENCY (uvicorn's own variable) runs that many processes in one
# container; scaling out is more containers (`docker compose up --scale web=N`). Arguments
# are passed on to uvicorn (a later --port or --host wins). PYTHON names the interpreter
# whose uvicorn runs (default: `python` on PATH, the image's). WebSockets: websockets' sans-I/O
# implementation, which uvicorn 0.35+ names as the successor of its deprecated `websockets`.
# No permessage-deflate: browsers offer it on every socket, and uvicorn accepting it gave each
# socket a zlib compressor and decompressor of its own: 69-72 against 33-36 KB a socket of
# 1,000 customers (bench.live --deflate-column), over issue 24's 45 KB. A live frame is a few
# KB of HTML, compressed once per socket it goes to.
set -eu
if [ -n "${FORWARDED_ALLOW_IPS:-}" ]; then
  set -- --proxy-headers --forwarded-allow-ips "$FORWARDED_ALLOW_IPS" "$@"
else
  set -- --no-proxy-headers "$@"
fi
exec "${PYTHON:-python}" -m uvicorn portal.asgi:application \
  --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
  --loop uvloop --http httptools --ws websockets-sansio --ws-per-message-deflate false \
  --no-access-log --timeout-graceful-shutdown 20 "$@"
