#!/usr/bin/env bash
# The container engine for `make deploy-test` (deploy/test/run.sh):
#
#   deploy/test/engine.sh start STATE_DIR   start dockerd unless one answers; record what it
#                                           changes on the host so `stop` can undo it
#   deploy/test/engine.sh stop STATE_DIR    stop the dockerd that `start` started (by its PID)
#                                           and restore ip_forward and the FORWARD policy
#
# Debian's docker.io is started by hand (no systemd here): it picks overlay2, cgroupfs and
# iptables by itself, sets net.ipv4.ip_forward=1 and the iptables FORWARD policy to DROP.
# Its data root (DEPLOY_TEST_DATA_ROOT) outlives the run, so images built once are reused.
set -euo pipefail

state=${2:?usage: engine.sh start|stop STATE_DIR}
data_root=${DEPLOY_TEST_DATA_ROOT:-/var/lib/porchlight-deploy-test/docker}
mkdir -p "$state"

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

forward_policy() { iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}'; }

case "$1" in
start)
  if engine_up; then
    echo "engine: a Docker engine already answers; using it (it is left running)"
    exit 0
  fi
  command -v dockerd >/dev/null || { echo "engine: no dockerd (apt-get install docker.io)" >&2; exit 1; }
  # What dockerd will change, to put back in `stop`.
  sysctl -n net.ipv4.ip_forward >"$state/ip_forward"
  forward_policy >"$state/forward_policy" || true
  # Its chains and NAT rules too: the whole filter and nat tables as they are now.
  iptables-save >"$state/iptables" 2>/dev/null || true
  ip -o link show >"$state/links"
  mkdir -p "$data_root"
  dockerd --data-root "$data_root" --pidfile "$state/dockerd.pid" \
    --host unix:///var/run/docker.sock >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.started"
  for _ in $(seq 1 60); do
    engine_up && { echo "engine: dockerd $(cat "$state/dockerd.started") started ($data_root)"; exit 0; }
    kill -0 "$(cat "$state/dockerd.started")" 2>/dev/null || break
    sleep 1
  done
  echo "engine: dockerd did not answer within 60 s:" >&2
  tail -n 20 "$state/dockerd.log" >&2
  exit 1
  ;;
stop)
  [ -f "$state/dockerd.started" ] || { echo "engine: not started by us; left as it is"; exit 0; }
  pid=$(cat "$state/dockerd.started")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    # dockerd stops its containers first (10 s each at most, in parallel).
    for _ in $(seq 1 45); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "engine: dockerd $pid still running after 45 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 2
    fi
  fi
  # containerd, started by dockerd as its child, goes with it; a leftover would be its own.
  if [ -f "$state/ip_forward" ]; then
    sysctl -q -w net.ipv4.ip_forward="$(cat "$state/ip_forward")"
  fi
  if [ -s "$state/iptables" ]; then
    iptables-restore <"$state/iptables"
  elif command -v iptables >/dev/null; then
    # No rule at all before: remove every chain and rule dockerd added.
    for table in filter nat; do iptables -t "$table" -F && iptables -t "$table" -X; done
    iptables -P FORWARD "$(cat "$state/forward_policy" 2>/dev/null || echo ACCEPT)"
  fi
  # The bridges dockerd made (docker0, br-…) outlive it.
  for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(docker0|br-)' || true); do
    grep -q ": $link[:@]" "$state/links" || ip link delete "$link" 2>/dev/null || true
  done
  rm -f "$state/dockerd.started"
  echo "engine: dockerd $pid stopped; ip_forward=$(sysctl -n net.ipv4.ip_forward), FORWARD $(forward_policy)"
  ;;
*)
  echo "usage: engine.sh start|stop STATE_DIR" >&2
  exit 2
  ;;
esac
