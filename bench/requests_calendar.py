"""Request work and Add to calendar through the real server: the form, a request with two
photos (the card, its files and request.created to a CRM endpoint), one visit's .ics and the
private feed for a few and many visits, against the bare view.

    SECRET_KEY=x DATABASE_URL=postgres://…/porchlight_bench_x REDIS_URL=redis://…/5 \\
        .venv/bin/python -m bench.requests_calendar [--requests 100] [--posts 30]

Each figure is the server's CPU per request (its process group, from /proc), the client's p50
latency, and the queries per request (counted in this process with Django's test client on
the same database). A CRM endpoint hears the events, so each request records `request.created`
and its outbox row (counted); no worker runs, so nothing is sent: the POST to the CRM happens
in a worker, after the response, and is not what is measured here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import uuid

from bench import harness


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (seed % 255, 90, 160)).save(out, "JPEG", quality=85)
    return out.getvalue()


def _form(day: str) -> dict:
    return {
        "key": uuid.uuid4().hex,
        "description": "Replace the back gate\nThe latch is broken.",
        "address": "12 Cedar Lane, Mystic",
        "window1_date": day,
        "window1_part": "morning",
        "window2_date": "",
        "window2_part": "afternoon",
    }


def _queries(client, method: str, url: str, data=None) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
    return len(captured.captured_queries), response.status_code


def _visits(customer, count: int) -> None:
    from django.utils import timezone

    from crm_events import actions

    start = timezone.now() + dt.timedelta(days=1)
    for i in range(count):
        at = start + dt.timedelta(days=i)
        actions.schedule_appointment(
            customer=customer,
            title=f"Visit {i}",
            starts_at=at,
            ends_at=at + dt.timedelta(hours=2),
            notify=False,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--posts", type=int, default=30)
    args = parser.parse_args()

    database_url, redis_url = harness.setup_django()
    harness.reset(redis_url)
    from django.test import Client
    from django.utils import timezone

    from crm_events.calendar import feed_url
    from crm_events.models import Appointment, OutboundEvent, WebhookEndpoint, WorkRequest

    world = harness.build_world(customers=2)
    few, many = world.customers
    _visits(few, 10)
    _visits(many, 200)
    # An endpoint hears request.created, so each request records its event and outbox row;
    # no worker runs, so its delivery task waits in the broker and nothing is sent.
    WebhookEndpoint.objects.create(
        url="https://crm.example.com/hooks", secret="whsec_" + "A" * 43 + "="
    )
    harness.analyze()
    day = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    photos = [_jpeg(1), _jpeg(2)]

    client = Client()
    client.force_login(few.user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload_form() -> dict:
        return {
            **_form(day),
            "photos": [
                SimpleUploadedFile(f"p{i}.jpg", data, "image/jpeg") for i, data in enumerate(photos)
            ],
        }

    q_form = _queries(client, "get", "/requests/new/")
    q_post = _queries(client, "post", "/requests/new/", upload_form())
    appointment_id = Appointment.objects.filter(customer=few).values_list("pk", flat=True)[0]
    q_ics = _queries(client, "get", f"/schedule/{appointment_id}/calendar.ics")
    few_feed = feed_url(few).split("://", 1)[1].split("/", 1)[1]
    many_feed = feed_url(many).split("://", 1)[1].split("/", 1)[1]
    q_feed_few = _queries(Client(), "get", f"/{few_feed}")
    q_feed_many = _queries(Client(), "get", f"/{many_feed}")

    server = harness.start_server(database_url, redis_url)
    try:
        session = harness.signed_in_session(server.url, few.user)
        floor = harness.bare_cost(server, session, n=args.requests)

        def get(path: str):
            def call() -> None:
                session.get(server.url + path, timeout=30).raise_for_status()

            return call

        def post() -> None:
            page = session.post(
                server.url + "/requests/new/",
                data=_form(day),
                files=[
                    ("photos", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)
                ],
                timeout=60,
                allow_redirects=False,
            )
            assert page.status_code == 302, page.status_code

        rows = [["what", "queries", "server CPU ms", "p50 ms", "× bare"]]

        def row(name: str, queries: tuple[int, int], cost: harness.Cost) -> None:
            assert queries[1] in (200, 302), (name, queries)
            rows.append(
                [
                    name,
                    str(queries[0]),
                    f"{cost.cpu_ms:.1f}",
                    f"{cost.p50_ms:.1f}",
                    f"{cost.ratio(floor):.1f}",
                ]
            )

        rows.append(["bare view", "0", f"{floor.cpu_ms:.1f}", f"{floor.p50_ms:.1f}", "1.0"])
        row(
            "GET /requests/new/",
            q_form,
            harness.measure(server, get("/requests/new/"), n=args.requests),
        )
        row(
            "POST /requests/new/ (2 photos, 1600×1200)",
            q_post,
            harness.measure(server, post, n=args.posts, warmup=3),
        )
        row(
            "GET one visit's .ics",
            q_ics,
            harness.measure(
                server, get(f"/schedule/{appointment_id}/calendar.ics"), n=args.requests
            ),
        )
        row(
            "GET feed, 10 visits",
            q_feed_few,
            harness.measure(server, get(f"/{few_feed}"), n=args.requests),
        )
        row(
            "GET feed, 200 visits",
            q_feed_many,
            harness.measure(server, get(f"/{many_feed}"), n=args.requests),
        )
    finally:
        server.stop()
    requests_made = WorkRequest.objects.count()
    events = OutboundEvent.objects.filter(type="request.created").count()
    print(harness.machine())
    print(harness.table(rows))
    print(f"work requests written: {requests_made}, request.created events: {events}")


if __name__ == "__main__":
    main()
