#!/usr/bin/env bash
# The base images docker-compose.yml and the Dockerfile name: python:3.11-slim, caddy:2,
# postgres:16, redis:7. Each is used as it is if the engine has it, pulled if a registry
# answers, and only otherwise built from Debian (deploy/test/standins/) under the same name,
# so the Dockerfile and the compose file never change for it.
#
# The stand-ins start from a Debian bookworm root filesystem made by mmdebstrap from the
# host's own Debian sources, trusting the host's certificate authorities
# (/usr/local/share/ca-certificates: HTTPS here may pass an intercepting proxy, which pip
# inside the image build must trust).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DOCKER_BUILDKIT=0

declare -A standin=([python:3.11-slim]=python [caddy:2]=caddy [postgres:16]=postgres [redis:7]=redis)
needed=()
for image in python:3.11-slim caddy:2 postgres:16 redis:7; do
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base: $image present"
  elif timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
    echo "base: $image pulled"
  else
    needed+=("$image")
  fi
done
[ ${#needed[@]} -eq 0 ] && exit 0
echo "base: no registry gives ${needed[*]}; building stand-ins from Debian"

if ! docker image inspect porchlight-standin/debian:bookworm >/dev/null 2>&1; then
  sources=/etc/apt/sources.list.d/debian.sources
  [ -f "$sources" ] || sources=/etc/apt/sources.list
  rootfs=$(mktemp --suffix=.tar)
  trap 'rm -f "$rootfs"' EXIT
  extra_cas=()
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    extra_cas=(--customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share'
      --customize-hook='chroot "$1" update-ca-certificates')
  fi
  timeout 900 mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    "${extra_cas[@]}" --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
    bookworm "$rootfs" "$sources"
  docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' "$rootfs" \
    porchlight-standin/debian:bookworm >/dev/null
  echo "base: porchlight-standin/debian:bookworm imported ($(du -h "$rootfs" | cut -f1))"
fi

for image in "${needed[@]}"; do
  name=${standin[$image]}
  timeout 900 docker build -q -t "$image" --label "org.porchlight.stand-in-for=$image" \
    -f "$here/standins/$name.Dockerfile" "$here/standins" >/dev/null
  echo "base: $image built from Debian (deploy/test/standins/$name.Dockerfile)"
done
