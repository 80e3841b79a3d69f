"""R8: every customer x every other's object, page, fragment, media file and socket -> 404 or
refused, 0 bytes leaked.

The URLs come from the URLconf (and the sockets from messaging.routing), not from a list:
each pattern is classified (customer, staff, webhook, public) and each parameter filled with
an object of Sarah's (customer A). Daniel (customer B) and an anonymous visitor then ask for
every one of them in every way; a pattern whose parameter the generator cannot fill fails
the test by name, so a new URL must be handled here before it ships."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from PIL import Image

from crm_events import actions as crm
from crm_events.announcements import audience
from crm_events.announcements.actions import start_announcement
from messaging import actions
from messaging.models import Attachment, Entry
from messaging.queries import shared_attachment_url
from messaging.routing import websocket_urlpatterns
from notifications.models import InboundMessage
from portal import entry_links
from portal.asgi import application
from tests.crm_events.conftest import lines
from tests.factories import ProjectFactory
from tests.servers import UNLIMITED_RATES

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SECRET = "QUOKKA-7731"  # in every text of Sarah's, and nowhere else
WEBHOOK_NAMES = {"twilio_sms", "twilio_status", "esp_webhook", "post_event"}
PUBLIC_NAMES = {
    "home",
    "health",
    "csp_report",
    "login",
    "login_code",
    "magic_link",
    "logout",
    "staff_login",
    "manifest",
    "service_worker",
    "offline",
    "favicon",
    "openapi-json",
    "api-root",
    # The business's logo, on the sign-in page: the business's, not a customer's.
    "business_logo",
}
REFUSED = {403, 404, 405}


def walk(patterns, prefix: str = ""):
    """(route, name, converters) of every pattern, admin's excepted."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if getattr(pattern, "app_name", None) == "admin" or route.startswith("admin/"):
                continue
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            if route.startswith(("static/", "media/", "__debug__/")):
                continue
            yield route, pattern.name or route, list(pattern.pattern.converters)


def classify(route: str, name: str) -> str:
    if name in WEBHOOK_NAMES or route.startswith(("webhooks/", "anymail/", "api/crm/")):
        return "webhook"
    if name in PUBLIC_NAMES:
        return "public"
    if route.startswith("staff/"):
        return "staff"
    return "customer"


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (201, 77, 31)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def sarahs_things(settings, tmp_path, customer, thread, staff):
    """One of each object Sarah owns, made through the real paths. (Her own project code:
    the fixture's PRJ-1042 is also the API document's example.)"""
    project = ProjectFactory(customer=customer, code="QK-7731", title=f"{SECRET} deck")
    settings.MEDIA_ROOT = tmp_path
    for name, rate in UNLIMITED_RATES.items():
        setattr(settings, name, rate)
    sarah = Client()
    sarah.force_login(customer.user)
    data = photo()
    upload = SimpleUploadedFile("quokka.png", data, content_type="image/png")
    response = sarah.post(
        "/messages/send/",
        {"body": f"{SECRET} gate code 4512", "key": "k-r8", "photos": [upload]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    actions.post_staff_message(thread=thread, author=staff, body=f"{SECRET} crew at 8")
    actions.add_internal_note(thread=thread, author=staff, body=f"{SECRET} note")
    starts = timezone.now() + dt.timedelta(days=7)
    things = {
        "thread": thread,
        "attachment": Attachment.objects.get(entry__thread=thread),
        "invoice": crm.send_invoice(
            customer=customer,
            project=project,
            number="INV-7731",
            lines=lines("6113.57"),
            currency="USD",
            total=Decimal("6113.57"),
        ).record,
        "estimate": crm.send_estimate(
            customer=customer,
            project=project,
            number="EST-8842",
            lines=lines("9271.44"),
            currency="USD",
        ).record,
        "appointment": crm.schedule_appointment(
            customer=customer,
            project=project,
            title=f"{SECRET} deck install",
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=2),
        ).record,
        "contract": crm.send_contract(
            customer=customer, project=project, number="C-7731", title=f"{SECRET} agreement"
        ).record,
        "inbound": InboundMessage.objects.create(
            channel="sms",
            provider_id="SM" + "7" * 32,
            sender=customer.phone,
            body=f"{SECRET} texted in",
            status=InboundMessage.Status.UNMATCHED,
            received_at=timezone.now(),
        ),
        # Staff's, not Sarah's: every customer (Sarah among them) is told one thing.
        "announcement": start_announcement(
            business=customer.business,
            author=staff,
            body=f"Hi {{first_name}}, {SECRET} rain today",
            choice=audience.Choice(audience="all"),
            form_token=uuid.uuid4(),
        )[0],
        "project": project,
        "photo": data,
    }
    return things


def fill(route: str, name: str, param: str, things: dict):
    """Sarah's object for one URL parameter, or None if the generator does not know it."""
    token = shared_attachment_url(things["attachment"]).rstrip("/").rsplit("/", 1)[-1]
    by_param = {
        "thread_id": things["thread"].pk,
        "attachment_id": things["attachment"].pk,
        "appointment_id": things["appointment"].pk,
        "contract_id": things["contract"].pk,
        "inbound_id": things["inbound"].pk,
        "announcement_id": things["announcement"].pk,
        "customer_id": things["thread"].customer_id,
        "business_id": things["thread"].customer.business_id,
        # The signed link for Twilio is a capability: whoever holds it may fetch the file.
        # Another customer does not hold it; the same link with its signature forged is his.
        "token": forged(token),
        "decision": "approve",
        "esp": "postmark",
        "kind": "inbound",
    }
    if name == "notification_link":
        # Sarah's notification link is hers alone; Daniel holds at most a forged copy.
        entry = Entry.objects.filter(thread=things["thread"]).last()
        path = entry_links.link_path(
            customer_id=things["thread"].customer_id, entry_id=entry.pk, seq=entry.seq, via="sms"
        )
        return forged(path.split("/")[2])
    if param == "number":
        if "invoice" in name:
            return things["invoice"].number
        if "estimate" in name:
            return things["estimate"].number
        if name == "unmatched_file":
            return 0
        return None
    return by_param.get(param)


def forged(token: str) -> str:
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


def state(things: dict) -> tuple:
    """What a refused request must not have changed."""
    for key in ("invoice", "estimate", "appointment", "contract", "inbound"):
        things[key].refresh_from_db()
    return (
        Entry.objects.filter(thread=things["thread"]).count(),
        things["invoice"].status,
        things["estimate"].status,
        things["appointment"].status,
        things["appointment"].starts_at,
        things["contract"].status,
        things["inbound"].status,
        Attachment.objects.count(),
    )


def leaks(content: bytes, marks: list[bytes]) -> list[str]:
    return [mark.decode(errors="replace")[:20] for mark in marks if mark in content]


async def _socket(path: str, cookie: bytes | None) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=3)
    return communicator, connected


def test_another_customer_and_strangers_reach_nothing_of_sarahs_from_any_url_or_socket(
    sarahs_things, customer, other_customer, staff, figures
):
    things = sarahs_things
    marks = [
        SECRET.encode(),
        customer.name.encode(),
        customer.email.encode(),
        customer.phone.encode(),
        b"6,113.57",
        b"6113.57",
        b"9,271.44",
        b"9271.44",
        b"INV-7731",
        b"EST-8842",
        things["project"].code.encode(),
        things["photo"][-64:],
    ]
    daniel = Client()
    daniel.force_login(other_customer.user)
    anonymous = Client()
    before = state(things)

    patterns = list(walk(get_resolver().url_patterns))
    unfilled, wrong, leaked = [], [], []
    urls = ways = 0
    by_class: dict[str, int] = {}
    for route, name, params in patterns:
        kind = classify(route, name)
        by_class[kind] = by_class.get(kind, 0) + 1
        values = {param: fill(route, name, param, things) for param in params}
        if any(value is None for value in values.values()):
            unfilled.append(f"{route} ({name}): {[p for p, v in values.items() if v is None]}")
            continue
        path = "/" + route
        for param, value in values.items():
            path = path.replace(f"<{param}>", str(value))
            for converter in ("int", "str", "slug", "path", "uuid"):
                path = path.replace(f"<{converter}:{param}>", str(value))
        urls += 1
        requests = [
            ("B GET", daniel, "get", {}),
            ("B GET htmx", daniel, "get", {"HTTP_HX_REQUEST": "true"}),
            ("B POST", daniel, "post", {}),
            ("anon GET", anonymous, "get", {}),
            ("anon POST", anonymous, "post", {}),
        ]
        for way, client, method, extra in requests:
            ways += 1
            response = getattr(client, method)(path, {"key": f"r8-{ways}"}, **extra)
            if "_auth_user_id" not in daniel.session:
                # POST /logout/ signs him out; /account/sign-out-everywhere/ also changes his
                # session hash, so he signs in again as he now is.
                other_customer.user.refresh_from_db()
                daniel.force_login(other_customer.user)
            status = response.status_code
            body = b"".join(response) if response.streaming else response.content
            found = leaks(body, marks)
            if found:
                leaked.append((path, way, status, found))
            if status >= 500:
                wrong.append((path, way, status))
            elif not params or kind == "public":
                continue  # no object of Sarah's in the URL: only leaks count
            elif status in REFUSED:
                continue
            elif name == "notification_link" and status == 400:
                continue  # a forged link: the page that says the link doesn't work
            elif way.startswith("anon") and status == 302:
                target = response["Location"]
                if not target.startswith(("/login/", "/staff/login/")):
                    wrong.append((path, way, status, target))
            elif kind == "webhook" and status == 401:
                continue
            else:
                wrong.append((path, way, status))
    # Daniel's own pages, fragments and searches, looking for Sarah's words.
    for path in ("/messages/search/?q=QUOKKA", "/messages/entries/?before=99", "/invoices/"):
        ways += 1
        found = leaks(daniel.get(path, HTTP_HX_REQUEST="true").content, marks)
        if found:
            leaked.append((path, "B search/fragment", 200, found))

    # The sockets, from messaging.routing, with Daniel's real session cookie.
    cookie = f"sessionid={daniel.cookies['sessionid'].value}".encode()
    socket_paths = []
    for pattern in websocket_urlpatterns:
        path = "/" + str(pattern.pattern)
        for param in pattern.pattern.converters:
            value = fill(path, "socket", param, things)
            if value is None:
                unfilled.append(f"socket {path}: {param}")
            path = path.replace(f"<int:{param}>", str(value)).replace(f"<{param}>", str(value))
        socket_paths.append(path)

    async def sockets() -> tuple[list, int]:
        opened, frames = [], 0
        for path in socket_paths:
            for who, with_cookie in (("B", cookie), ("anon", None)):
                communicator, connected = await _socket(path, with_cookie)
                if not connected:
                    continue
                if (who, path) != ("B", "/ws/thread/"):
                    opened.append((who, path))
                    await communicator.disconnect()
                    continue
                # Daniel's own thread socket: Sarah's next message must not reach it.
                await sync_to_async(actions.post_staff_message)(
                    thread=things["thread"], author=staff, body=f"{SECRET} live"
                )
                while not await communicator.receive_nothing(timeout=0.5):
                    frame = await communicator.receive_from()
                    if any(mark.decode(errors="ignore") in frame for mark in marks[:4]):
                        frames += 1
                await communicator.disconnect()
        return opened, frames

    opened, leaked_frames = async_to_sync(sockets)()
    after = state(things)

    assert unfilled == [], "URL patterns the generator cannot fill:\n" + "\n".join(unfilled)
    assert wrong == [], wrong
    assert leaked == [], leaked
    assert opened == [], opened
    assert leaked_frames == 0
    assert after[1:] == before[1:] and after[0] == before[0] + 1  # only the "live" message
    assert urls > 40 and by_class.get("customer", 0) > 10 and by_class.get("staff", 0) > 10
    socket_ways = len(socket_paths) * 2
    figures(
        f"{urls} urls x 5 ways + 3 own fragments ({ways} requests; "
        f"{', '.join(f'{k} {v}' for k, v in sorted(by_class.items()))}) and "
        f"{len(socket_paths)} sockets x 2 ways -> all refused, "
        f"{len(leaked) + leaked_frames} leaks of Sarah's strings or bytes "
        f"({socket_ways} socket attempts, "
        f"{len(opened)} opened)"
    )
