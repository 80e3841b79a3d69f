"""Production's settings, plus the floor every bench figure is compared with.

The benches start the app with deploy/web.sh itself, which serves portal.asgi; the only way in
without a copy of the script's arguments is the settings module it reads
(DJANGO_SETTINGS_MODULE, which portal.asgi only defaults). Everything is portal.settings —
logging included — except one middleware in front of the chain that answers the bare floor
path before any of Porchlight's middleware runs, and passes every other request on untouched.
"""

from __future__ import annotations

from portal.settings import *  # noqa: F403 - production's settings, unchanged
from portal.settings import MIDDLEWARE

MIDDLEWARE = ["bench.floor.BareFloorMiddleware", *MIDDLEWARE]
