#!/bin/sh
# As the real redis image: without a config file Redis 7 answers only loopback ("protected
# mode"), so other containers could not reach it.
set -e
if [ "${1:-}" = redis-server ] && [ ! -f "${2:-}" ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
