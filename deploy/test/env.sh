#!/usr/bin/env bash
# deploy/test/env.sh OUT: the env file of the rehearsal, made as docs/operations.md step 3 says
# (the example, every change-me filled with a fresh secret), for the name `localhost`, which
# Caddy serves with certificates of its own internal CA. No provider has keys, so SMS and
# email go to the console (the worker's log), which is where the rehearsal reads them.
set -euo pipefail
out=${1:?usage: env.sh OUT}
here=$(cd "$(dirname "$0")/../.." && pwd)
secret() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
password=$(secret 24)
crm=$(python3 -c "import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())")
sed -e "s|^SITE_ADDRESS=.*|SITE_ADDRESS=localhost|" \
  -e "s|^SITE_URL=.*|SITE_URL=https://localhost|" \
  -e "s|^ALLOWED_HOSTS=.*|ALLOWED_HOSTS=localhost|" \
  -e "s|^SECRET_KEY=change-me|SECRET_KEY=$(secret 50)|" \
  -e "s|^POSTGRES_PASSWORD=change-me|POSTGRES_PASSWORD=$password|" \
  -e "s|^DATABASE_URL=postgres://porchlight:change-me@|DATABASE_URL=postgres://porchlight:$password@|" \
  -e "s|^CRM_WEBHOOK_SECRET=change-me|CRM_WEBHOOK_SECRET=$crm|" \
  -e "s|^ANYMAIL_WEBHOOK_SECRET=change-me:change-me|ANYMAIL_WEBHOOK_SECRET=porchlight:$(secret 16)|" \
  -e "/^EMAIL_BACKEND=/d" -e "/^ANYMAIL_POSTMARK_SERVER_TOKEN=/d" -e "/^TWILIO_/d" \
  "$here/deploy/porchlight.env.example" >"$out"
cat >>"$out" <<'VARS'

# -- The rehearsal's own (deploy/test/run.sh): periodic work in seconds, not minutes, so
# recovery is seen within the run; no send limit on the staff user the traffic loop uses.
NOTIFICATIONS_SWEEP_SECONDS=5
NOTIFICATIONS_QUEUED_GRACE_SECONDS=10
NOTIFICATIONS_SENDING_LEASE_SECONDS=20
CRM_AUTOMATIONS_SECONDS=10
EMAIL_NOTIFICATION_DELAY_SECONDS=3
RATE_SENDS_PER_USER=10000/m
VARS
chmod 600 "$out"
if grep -v "^#" "$out" | grep -q change-me; then
  echo "env: a change-me is left in $out:" >&2
  grep -v "^#" "$out" | grep change-me >&2
  exit 1
fi
