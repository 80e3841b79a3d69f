"""Container health checks for docker-compose.yml (standard library only).

    python deploy/healthcheck.py web    GET /health/ of this container's web process
    python deploy/healthcheck.py beat   the beat schedule was written recently

The web check names the first of ALLOWED_HOSTS as its Host, as the proxy does; /health/ is
exempt from the HTTPS redirect, so plain http inside the container is answered.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request


def web() -> int:
    host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip()
    request = urllib.request.Request(
        f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health/",
        headers={"Host": host, "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as error:
        print(error.read().decode(errors="replace"), file=sys.stderr)
    except OSError as error:
        print(error, file=sys.stderr)
    return 1


def beat() -> int:
    # Beat records each task it sends in its schedule file; the notifications sweep is due
    # every NOTIFICATIONS_SWEEP_SECONDS (30 s), so a file older than 5 minutes means stuck.
    # The container's own /tmp, where docker-compose.yml has beat keep it.
    path = os.environ.get("BEAT_SCHEDULE", "/tmp/celerybeat-schedule")  # noqa: S108
    candidates = [p for p in (path, path + ".db", path + ".dat") if os.path.exists(p)]
    if not candidates:
        return 1
    return 0 if time.time() - max(os.path.getmtime(p) for p in candidates) < 300 else 1


if __name__ == "__main__":
    sys.exit({"web": web, "beat": beat}[sys.argv[1] if len(sys.argv) > 1 else "web"]())
