"""Request work (/requests/new/, issue 21 part B): the request, its card with photos in the
thread (unread for staff), `request.created` to the CRM once, bad input refused with nothing
written, and a project made from a request in the admin."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from urllib.parse import urlsplit

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from crm_events import actions
from crm_events.actions.requests import Window
from crm_events.models import OutboundEvent, WorkRequest
from messaging.models import Attachment, Entry, Thread
from portal.models import Project
from tests.factories import ProjectFactory

URL = "/requests/new/"


def jpeg(color=(200, 80, 40), size=(320, 240), *, make: str | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if make:
        exif[0x010F] = make  # the camera's maker: device metadata, stripped on the way in
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def upload(name="gate.jpg", data=None, content_type="image/jpeg"):
    return SimpleUploadedFile(name, data if data is not None else jpeg(), content_type)


def in_days(n: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=n)).isoformat()


def form(**overrides) -> dict:
    data = {
        "key": uuid.uuid4().hex,
        "description": "Replace the back gate\nThe latch is broken.",
        "address": "12 Cedar Lane, Springfield",
        "window1_date": in_days(3),
        "window1_part": "morning",
        "window2_date": in_days(4),
        "window2_part": "evening",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def nothing_written():
    assert WorkRequest.objects.count() == 0
    assert Entry.objects.count() == 0
    assert Attachment.objects.count() == 0
    assert OutboundEvent.objects.count() == 0


# -- the page -----------------------------------------------------------------------------------


def test_the_form_offers_the_customers_address(customer_client, customer):
    customer.address = "12 Cedar Lane, Springfield"
    customer.save()
    page = customer_client.get(URL).content.decode()
    assert 'value="12 Cedar Lane, Springfield"' in page
    assert 'name="key"' in page and 'enctype="multipart/form-data"' in page


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_customer_pages_link_to_request_work(customer_client, customer):
    for page in ("/project/", "/schedule/", "/messages/"):
        assert f'href="{URL}"' in customer_client.get(page).content.decode(), page


# -- a request ----------------------------------------------------------------------------------


def test_a_request_with_two_photos_is_a_card_unread_for_staff_and_one_event_to_the_crm(
    customer_client, customer, thread, crm_endpoint, committed, staff
):
    data = form(
        photos=[
            upload("gate.jpg", jpeg(make="SECRET-CAMERA")),
            upload("latch.png", _png(), "image/png"),
        ]
    )
    with committed():
        response = customer_client.post(URL, data)
    assert response.status_code == 302

    work_request = WorkRequest.objects.get()
    entry = work_request.entry
    assert response["Location"] == f"/messages/?at={entry.seq}"
    assert (entry.kind, entry.card_kind, entry.author) == (
        "customer_card",
        "request",
        customer.user,
    )
    assert entry.body == "Work request: Replace the back gate — 2 photos"
    assert work_request.description == "Replace the back gate\nThe latch is broken."
    assert work_request.windows == [
        {"date": in_days(3), "part": "morning"},
        {"date": in_days(4), "part": "evening"},
    ]
    files = list(entry.attachments.all())
    assert [f.name for f in files] == ["gate.jpg", "latch.png"]
    with files[0].file.open("rb") as stored:
        assert b"SECRET-CAMERA" not in stored.read()
    assert Thread.objects.get(pk=thread.pk).staff_unread == 1

    # The customer sees the card with its photos (staff: the live test, and below).
    html = customer_client.get("/messages/").content.decode()
    assert "Work request: Replace the back gate" in html
    assert html.count(f"/attachments/{files[0].pk}/thumbnail/") == 1

    (event,) = crm_endpoint.events.values()
    assert event["type"] == "request.created"
    data_sent = event["data"]
    assert data_sent["request_id"] == work_request.pk and data_sent["entry_id"] == entry.pk
    assert data_sent["description"] == work_request.description
    assert data_sent["address"] == "12 Cedar Lane, Springfield"
    assert [w["part"] for w in data_sent["windows"]] == ["morning", "evening"]
    assert data_sent["windows"][0]["starts_at"].endswith("Z")
    assert [p["id"] for p in data_sent["photos"]] == [f.pk for f in files]
    # The CRM fetches each photo by its link, with no session; a forged link is a 404.
    path = urlsplit(data_sent["photos"][1]["url"]).path
    fetched = Client().get(path)
    assert fetched.status_code == 200 and fetched["Content-Type"] == "image/png"
    with files[1].file.open("rb") as stored:
        assert b"".join(fetched.streaming_content) == stored.read()
    assert Client().get(path.replace(path.split("/")[-2][-4:], "AAAA")).status_code == 404
    staff_client = Client()
    staff_client.force_login(staff)
    staff_html = staff_client.get(f"/staff/chat/{thread.pk}/").content.decode()
    assert "Work request: Replace the back gate" in staff_html and customer.name in staff_html


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 150), (10, 120, 60)).save(out, "PNG")
    return out.getvalue()


def test_a_double_submit_is_one_request_and_one_event(
    customer_client, customer, thread, crm_endpoint, committed
):
    data = form()
    with committed():
        first = customer_client.post(URL, data)
    with committed():
        second = customer_client.post(URL, data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert WorkRequest.objects.count() == 1 and Entry.objects.count() == 1
    assert OutboundEvent.objects.count() == 1 and len(crm_endpoint.events) == 1


def test_one_window_is_enough_and_a_request_without_photos_says_none(customer_client, thread):
    response = customer_client.post(URL, form(window2_date=None, window2_part=None))
    assert response.status_code == 302
    work_request = WorkRequest.objects.get()
    assert work_request.entry.body == "Work request: Replace the back gate"
    assert len(work_request.windows) == 1


# -- bad input: a clear answer, nothing written ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"description": ""}, "Say what needs doing."),
        ({"description": "   \n  "}, "Say what needs doing."),
        ({"description": "x" * 2001}, "at most 2000 characters"),
        ({"address": ""}, "Say where the work is."),
        ({"window1_date": ""}, "Choose a day that suits you."),
        ({"window1_date": "not-a-date"}, "Enter a valid date."),
        # Dates as functions, read when the test runs: a run that crosses midnight would
        # otherwise compare a day taken at collection with one taken at the test.
        ({"window1_date": lambda: in_days(-1)}, "Choose a time that has not started yet."),
        ({"window1_date": lambda: in_days(400)}, "Choose a day within the next year."),
        ({"window2_date": lambda: in_days(3), "window2_part": "morning"}, "differs from the first"),
        ({"window1_part": "midnight"}, "Select a valid choice."),
        ({"key": "../../etc"}, "malformed"),
    ],
)
def test_bad_input_is_a_form_error_and_writes_nothing(
    customer_client, thread, crm_endpoint, overrides, says
):
    overrides = {k: v() if callable(v) else v for k, v in overrides.items()}
    response = customer_client.post(URL, form(**overrides))
    assert response.status_code == 400
    assert says in response.content.decode()
    nothing_written()


def test_a_sixth_photo_is_refused(customer_client, thread, crm_endpoint):
    photos = [upload(f"p{i}.jpg") for i in range(6)]
    response = customer_client.post(URL, form(photos=photos))
    assert response.status_code == 400
    assert "Attach at most 5 photos." in response.content.decode()
    nothing_written()


def test_an_oversized_photo_is_refused(customer_client, thread, crm_endpoint, settings):
    settings.ATTACHMENT_MAX_BYTES = 2000
    response = customer_client.post(URL, form(photos=[upload("big.jpg", jpeg(size=(900, 700)))]))
    assert response.status_code == 400
    assert "big.jpg is larger than" in response.content.decode()
    nothing_written()


def test_a_file_that_is_not_a_photo_is_refused(customer_client, thread, crm_endpoint):
    pdf = upload("plan.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    fake = upload("gate.jpg", b"MZ\x90\x00 not a picture", "image/jpeg")
    for photo, says in ((pdf, "plan.pdf is not a photo."), (fake, "gate.jpg is not a photo")):
        response = customer_client.post(URL, form(photos=[photo]))
        assert response.status_code == 400
        assert says in response.content.decode()
    nothing_written()


def test_photos_past_the_customers_file_budget_are_refused(
    customer_client, thread, crm_endpoint, settings
):
    settings.ATTACHMENT_BYTES_PER_CUSTOMER = 1000
    response = customer_client.post(URL, form(photos=[upload()]))
    assert response.status_code == 400
    assert "past its" in response.content.decode()
    nothing_written()


def test_the_action_refuses_what_the_form_would(customer, thread):
    past = Window(date=timezone.localdate() - dt.timedelta(days=2), part="morning")
    for windows in ([], [past]):
        with pytest.raises(ValidationError):
            actions.request_work(
                customer=customer, description="Gate", address="Here", windows=windows, key="k"
            )
    nothing_written()


# -- staff: a project from a request -------------------------------------------------------------


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123-xyz")
    client.force_login(user)
    return client


def _request(customer, description="Replace the back gate") -> WorkRequest:
    work_request, _ = actions.request_work(
        customer=customer,
        description=description,
        address="12 Cedar Lane",
        windows=[Window(date=timezone.localdate() + dt.timedelta(days=3), part="morning")],
        key=uuid.uuid4().hex,
    )
    return work_request


def test_staff_create_a_project_from_a_request_in_the_admin(admin_client, customer, thread):
    staff_client = admin_client
    ProjectFactory(customer=customer, code="PRJ-1042")
    work_request = _request(customer)
    changelist = "/admin/crm_events/workrequest/"
    assert "Replace the back gate" in staff_client.get(changelist).content.decode()
    response = staff_client.post(
        changelist,
        {"action": "create_project", "_selected_action": [work_request.pk]},
        follow=True,
    )
    assert response.status_code == 200
    work_request.refresh_from_db()
    project = work_request.project
    assert (project.code, project.customer, project.title) == (
        "PRJ-1043",
        customer,
        "Replace the back gate",
    )
    assert "Project PRJ-1043" in response.content.decode()
    # Again: the request keeps its project, and no second one is made.
    staff_client.post(
        changelist, {"action": "create_project", "_selected_action": [work_request.pk]}
    )
    assert Project.objects.filter(customer=customer).count() == 2
    page = staff_client.get(f"{changelist}{work_request.pk}/change/").content.decode()
    assert "PRJ-1043" in page


def test_requests_are_read_only_in_the_admin(staff, rf, customer, thread):
    admin = admin_site._registry[WorkRequest]
    request = rf.get("/admin/")
    request.user = staff
    assert not admin.has_add_permission(request)
    assert not admin.has_delete_permission(request)
