#!/usr/bin/env bash
# `make deploy-test`: the container deployment, built and run for real, as docs/operations.md
# tells an operator to, then proved from outside through the proxy over HTTPS:
#
#   1. what it needs: Debian's docker.io, docker-compose, mmdebstrap, Chromium (apt-get, as
#      root, only when missing); an engine (started by deploy/test/engine.sh if none answers);
#      the base images (deploy/test/base-images.sh: from Debian only when no registry has them)
#   2. operations.md steps 3-4: the env file from the example, `up -d --build --scale web=2`,
#      every service healthy, migrate exited 0; /health/ 200 with every check
#   3. demo data; a staff login link signs in; a message sent through web_2 reaches the
#      customer's socket on web_1 (and through the proxy); the worker delivers it (console
#      providers); beat runs an automation (a follow-up); a photo lands on the media volume
#   4. `down` and `up` again: the thread and the photo are still there (volumes)
#   5. faults under traffic (deploy/test/stack.py faults): Redis stopped 30 s, the database
#      restarted, the worker killed; nothing lost or doubled, the open page resumes by itself
#   6. backup (pg_dump + media archive) from the running stack, restored into a fresh stack
#      by the restore commands of operations.md: counts and last sequence number equal
#   7. upgrade from the previous image (the commit before the newest migration) to this one:
#      migrate runs and succeeds before the old web containers stop; data intact
#
# Whatever happens, it removes every container and volume it made, stops the engine it
# started and restores the host's ip_forward and iptables (a trap). Every wait is bounded.
# Figures go to stdout and to $DEPLOY_TEST_FIGURES (default /tmp/porchlight-deploy-test.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STARTED=$SECONDS
PYTHON=${DEPLOY_TEST_PYTHON:-$ROOT/.venv/bin/python}
FIGURES=${DEPLOY_TEST_FIGURES:-/tmp/porchlight-deploy-test.json}
STATE=$(mktemp -d /tmp/porchlight-deploy-test.XXXXXX)
MAIN=porchlight-deploy-test
RESTORE=porchlight-deploy-test-restore
UPGRADE=porchlight-deploy-test-upgrade
export ENV_FILE=$STATE/porchlight.env DEPLOY_TEST_CA=$STATE/caddy-root.crt
# The engine's classic builder: Debian's docker.io and the docker 28 client here have no buildx.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
background=()

log() { printf '\n== [%4ds] %s\n' $((SECONDS - STARTED)) "$*"; }
fail() { echo "deploy-test: FAILED: $*" >&2; exit 1; }
figure() { printf '%s\n' "$1" >>"$FIGURES"; }

cleanup() {
  status=$?
  set +e
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null; done
  if timeout 10 docker info >/dev/null 2>&1; then
    for project in "$MAIN" "$RESTORE" "$UPGRADE"; do
      if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$project")" ]; then
        [ $status -ne 0 ] && COMPOSE_PROJECT_NAME=$project timeout 60 $COMPOSE logs --no-color --tail 30 2>/dev/null | tail -n 120
        COMPOSE_PROJECT_NAME=$project timeout 180 $COMPOSE down -v --remove-orphans --timeout 20 >/dev/null 2>&1
        # Whatever compose could not remove (a hung container), by its project label.
        ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
        [ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1
      fi
      vols=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
      [ -n "$vols" ] && docker volume rm $vols >/dev/null 2>&1
    done
    docker rmi porchlight:deploy-test-new >/dev/null 2>&1
  fi
  deploy/test/engine.sh stop "$STATE"
  rm -rf "$STATE"
  if [ $status -eq 0 ]; then
    log "deploy-test passed in $((SECONDS - STARTED)) s; figures in $FIGURES"
  else
    log "deploy-test FAILED after $((SECONDS - STARTED)) s (exit $status)"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- 1. what it needs ------------------------------------------------------------------------
log "Packages"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v iptables >/dev/null || missing+=(iptables)
command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "needs ${missing[*]} (apt-get install, as root)"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
# Compose v2 (the plugin) when the client has it, else v1: operations.md's commands are the same.
if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE=docker-compose; fi
echo "compose: $($COMPOSE version --short 2>/dev/null || $COMPOSE version)"
[ -x "$PYTHON" ] || fail "no $PYTHON (make install)"
: >"$FIGURES"

log "Engine"
deploy/test/engine.sh start "$STATE"
docker info --format 'storage {{.Driver}}, cgroups {{.CgroupDriver}}, server {{.ServerVersion}}'

log "Base images"
t0=$SECONDS
timeout 1800 deploy/test/base-images.sh 2>&1 | grep -v -e DEPRECATED -e BuildKit -e environment-variable -e '^$'
figure "{\"step\": \"base images\", \"seconds\": $((SECONDS - t0))}"

# -- helpers for one compose project ---------------------------------------------------------
c() { COMPOSE_PROJECT_NAME=$project timeout "${T:-300}" $COMPOSE "$@"; }
stack() { COMPOSE_PROJECT_NAME=$project COMPOSE=$COMPOSE timeout "${T:-300}" "$PYTHON" deploy/test/stack.py "$@"; }

# Every long-running service healthy and migrate exited 0, as `docker compose ps -a` shows them.
wait_healthy() {
  local deadline=$((SECONDS + ${1:-300})) lines
  while [ $SECONDS -lt $deadline ]; do
    lines=$(docker ps -a --filter "label=com.docker.compose.project=$project" \
      --format '{{.Label "com.docker.compose.service"}} {{.Status}}')
    if [ -n "$lines" ] && echo "$lines" | awk '
        $1 == "migrate" { if ($2 != "Exited" || $3 != "(0)") bad = 1; next }
        !/\(healthy\)/ { bad = 1 }
        END { exit bad }'; then
      return 0
    fi
    if echo "$lines" | grep -q '^migrate Exited ([1-9]'; then
      c logs --no-color migrate | tail -n 30
      fail "migrate failed"
    fi
    sleep 3
  done
  echo "$lines"
  fail "$project: not every service healthy within ${1:-300} s"
}

# The proxy's root certificate (Caddy's internal CA, on its data volume): what a browser of
# the operator's would be told to trust for `localhost`.
fetch_ca() {
  local deadline=$((SECONDS + 60))
  until c exec -T proxy cat /data/caddy/pki/authorities/local/root.crt >"$DEPLOY_TEST_CA" 2>/dev/null \
      && [ -s "$DEPLOY_TEST_CA" ]; do
    [ $SECONDS -lt $deadline ] || fail "no Caddy root certificate within 60 s"
    sleep 2
  done
  deadline=$((SECONDS + 60))
  until curl -sf --cacert "$DEPLOY_TEST_CA" -o /dev/null https://localhost/health/; do
    [ $SECONDS -lt $deadline ] || fail "https://localhost/health/ not answering within 60 s"
    sleep 2
  done
}

same_snapshot() {  # same_snapshot WHAT BEFORE AFTER
  "$PYTHON" - "$@" <<'EOF'
import json, sys
what, before, after = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
keys = ("entries", "sarah_entries", "sarah_last_seq", "files")
diff = {k: (before[k], after[k]) for k in keys if before[k] != after[k]}
if diff:
    sys.exit(f"deploy-test: FAILED: {what} changed {diff}")
print(f"{what}: {before['entries']} entries, Sarah's last seq {before['sarah_last_seq']}, "
      f"{len(before['files'])} file(s): equal")
EOF
}

# -- 2. operations.md steps 3 and 4 ----------------------------------------------------------
project=$MAIN
log "Env file (operations.md step 3)"
deploy/test/env.sh "$ENV_FILE"

log "docker compose up -d --build --scale web=2 (operations.md step 4)"
t0=$SECONDS
T=1200 c up -d --build --scale web=2 2>&1 | grep -v -e DEPRECATED -e BuildKit -e environment-variable -e '^ *---> ' -e '^Step ' -e '^Removing intermediate'
t1=$SECONDS
wait_healthy 300
fetch_ca
figure "{\"step\": \"up --build --scale web=2\", \"build_and_start_s\": $((t1 - t0)), \"healthy_s\": $((SECONDS - t1))}"
c ps -a
docker tag porchlight:latest porchlight:deploy-test-new
stack health

# -- 3. the stack, proved ---------------------------------------------------------------------
log "Demo data (operations.md step 5 makes a superuser and the business by hand)"
c exec -T web python manage.py demo
log "A staff link signs in; a message crosses web containers; the worker delivers it"
figure "$(stack live)"
log "Beat runs an automation"
figure "$(stack automation)"
log "A photo on the media volume"
before=$(stack media)
echo "$before"

# -- 4. down and up keep the data -------------------------------------------------------------
log "docker compose down; up -d --scale web=2: volumes keep the data"
t0=$SECONDS
c down --timeout 30
c up -d --scale web=2
wait_healthy 300
fetch_ca
figure "{\"step\": \"down, up\", \"seconds\": $((SECONDS - t0))}"
after=$(stack snapshot)
same_snapshot "down and up" "$before" "$after"
stack health

# -- 5. faults under traffic --------------------------------------------------------------------
log "Faults under traffic: Redis stopped 30 s, the database restarted, the worker killed"
T=1200 stack faults | while read -r line; do echo "$line"; figure "$line"; done
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "a fault rehearsal failed (figures above)"
wait_healthy 180

# -- 6. backup, restored into a fresh stack -----------------------------------------------------
log "Backup (operations.md: Backups and restore)"
backups=$STATE/backups
mkdir -p "$backups"
c exec -T db pg_dump -U porchlight -Fc porchlight >"$backups/db.dump"
c run --rm --no-deps --user root -v "$backups:/backup" web \
  tar czf /backup/media.tgz -C /data media
ls -l "$backups"
backed_up=$(stack snapshot)
c down --timeout 30

project=$RESTORE
log "Restore into a fresh stack ($project)"
t0=$SECONDS
c up -d --scale web=2
wait_healthy 300
c stop proxy web worker beat
c exec -T db dropdb -U porchlight porchlight
c exec -T db createdb -U porchlight porchlight
c exec -T db pg_restore -U porchlight -d porchlight --no-owner <"$backups/db.dump"
c run --rm --no-deps --user root -v "$backups:/backup" web \
  sh -c 'rm -rf /data/media/* && tar xzf /backup/media.tgz -C /data'
c up -d --scale web=2
wait_healthy 300
fetch_ca
restored=$(stack snapshot)
same_snapshot "backup restored" "$backed_up" "$restored"
stack health
figure "{\"step\": \"restore into a fresh stack\", \"seconds\": $((SECONDS - t0))}"
c down -v --timeout 30

# -- 7. upgrade from the previous image ---------------------------------------------------------
project=$UPGRADE
log "Upgrade rehearsal ($project)"
# The previous version: the commit before the newest migration was added, so the upgrade
# has a migration to run (DEPLOY_TEST_PREVIOUS names another commit). Along main's own line
# (--first-parent): a merged branch's commits had migrations numbered before the merge.
newest=$(git log -1 --first-parent --format=%H --diff-filter=A -- '*/migrations/0*.py')
previous=${DEPLOY_TEST_PREVIOUS:-$newest^}
echo "previous: $(git log -1 --format='%h %s' "$previous" | cut -c1-90)"
t0=$SECONDS
git archive --format=tar "$previous" | timeout 1200 docker build -q -t porchlight:previous - >/dev/null 2>"$STATE/build.err" \
  || { cat "$STATE/build.err"; fail "building the previous image"; }
docker tag porchlight:previous porchlight:latest
figure "{\"step\": \"previous image built\", \"seconds\": $((SECONDS - t0))}"
c up -d --scale web=2
wait_healthy 300
fetch_ca
c exec -T web python manage.py demo >/dev/null
old_migrations=$(c exec -T db psql -U porchlight -tAc "SELECT count(*) FROM django_migrations")
before=$(stack snapshot)
old_webs=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=web" | sort | tr '\n' ' ')

# operations.md's upgrade: the dump, `git pull` + `docker compose build` (here: the image built
# in step 2 becomes porchlight:latest again), `up -d --scale web=2`. Meanwhile /health/ is
# asked through the proxy every half second.
c exec -T db pg_dump -U porchlight -Fc porchlight >"$STATE/before-upgrade.dump"
docker tag porchlight:deploy-test-new porchlight:latest
( while :; do
    printf '%s %s\n' "$(date +%s.%N)" \
      "$(curl -s -o /dev/null -m 5 -w '%{http_code}' --cacert "$DEPLOY_TEST_CA" https://localhost/health/)"
    sleep 0.5
  done >"$STATE/upgrade-health" ) &
background+=($!)
since=$(date +%s)
t0=$SECONDS
c up -d --scale web=2
wait_healthy 300
upgrade_s=$((SECONDS - t0))
kill "${background[-1]}"
sleep 1
new_migrations=$(c exec -T db psql -U porchlight -tAc "SELECT count(*) FROM django_migrations")
after=$(stack snapshot)
same_snapshot "upgrade" "$before" "$after"
docker events --since "$since" --until "$(date +%s)" \
  --filter "label=com.docker.compose.project=$project" --filter type=container \
  --format '{{.TimeNano}} {{.Action}} {{index .Actor.Attributes "com.docker.compose.service"}} {{.Actor.ID}} {{.Actor.Attributes.exitCode}}' \
  >"$STATE/upgrade-events"
"$PYTHON" - "$STATE/upgrade-events" "$STATE/upgrade-health" "$old_webs" "$old_migrations" "$new_migrations" "$upgrade_s" >>"$FIGURES" <<'EOF'
import json, sys
events, health, old_webs = open(sys.argv[1]).read().split("\n"), open(sys.argv[2]).read().split("\n"), sys.argv[3].split()
old_n, new_n, seconds = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rows = [e.split() for e in events if e.strip()]
migrate_done = [int(r[0]) for r in rows if r[1] == "die" and r[2] == "migrate" and r[4:] == ["0"]]
migrate_failed = [r for r in rows if r[1] == "die" and r[2] == "migrate" and r[4:] != ["0"]]
old_stopped = [int(r[0]) for r in rows if r[1] in ("kill", "stop", "die") and any(r[3].startswith(w) for w in old_webs)]
if not migrate_done or migrate_failed:
    sys.exit(f"deploy-test: FAILED: migrate did not exit 0 during the upgrade: {migrate_failed}")
if new_n <= old_n:
    sys.exit(f"deploy-test: FAILED: no migration applied by the upgrade ({old_n} -> {new_n})")
if not old_stopped or min(old_stopped) < max(migrate_done):
    sys.exit("deploy-test: FAILED: the old web containers stopped before migrate succeeded")
polls = [line.split() for line in health if len(line.split()) == 2]
down = [float(t) for t, code in polls if code != "200"]
figures = {
    "step": "upgrade", "migrations": f"{old_n} -> {new_n}", "up_s": seconds,
    "old_web_served_after_migrate_s": round((min(old_stopped) - max(migrate_done)) / 1e9, 1),
    "health_polls": len(polls), "health_not_200": len(down),
    "unavailable_s": round(max(down) - min(down) + 0.5, 1) if down else 0,
}
print(json.dumps(figures))
print(json.dumps(figures), file=sys.stderr)
EOF
c down -v --timeout 30
docker tag porchlight:deploy-test-new porchlight:latest
