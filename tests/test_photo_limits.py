"""What a photo may cost before anyone is told no (issue 18 item 3), and what a stored one
may tell (item 8): the send limit counts before any file is read, a picture's memory is read
from its header and refused before decoding, each customer's files have a budget, and
originals keep their orientation but not where, or with what, they were taken."""

from __future__ import annotations

import io
import struct
import time
from urllib.parse import urlsplit

import pillow_heif
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from messaging.attachments import MAX_DECODED_BYTES, _decoding_bytes, check_attachment
from messaging.image_metadata import strip_metadata
from messaging.models import Attachment, Entry
from messaging.queries import shared_attachment_url
from notifications.models import InboundMessage
from tests.images import (
    GPS_IFD,
    MAKE,
    MODEL,
    ORIENTATION,
    peak_rss_mb,
    peak_rss_reset,
    phone_photo,
    png_bomb,
)

pytestmark = pytest.mark.django_db


def _upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def _broken_png() -> bytes:
    """A PNG whose header is fine (64 x 64) and whose pixels are not there."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64)).save(out, "PNG")
    data = out.getvalue()
    at = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[at : at + 4])
    return data[: at + 8] + b"\x00" * length + data[at + 8 + length :]


# -- item 3: decoding before any limit ---------------------------------------------------------


def test_a_16_bit_png_bomb_is_refused_from_its_header_without_decoding():
    bomb = png_bomb()
    assert 380_000 < len(bomb) < 390_000  # the 381 KB, 7000 x 7000
    peak_rss_reset()
    before = peak_rss_mb()
    started = time.process_time()
    with pytest.raises(ValidationError) as refused:
        check_attachment(name="bomb.png", content_type="image/png", data=bomb)
    cpu = time.process_time() - started
    grew = peak_rss_mb() - before
    assert refused.value.code == "too_much_memory"
    assert "too large a picture" in refused.value.messages[0]
    # Decoding it took ~560 MB and 6 s of CPU.
    assert grew < 20, f"the process grew {grew:.0f} MB"
    assert cpu < 0.5, f"{cpu:.2f} s of CPU"


@pytest.mark.parametrize(("mode", "side"), [("RGB", 3600), ("RGBA", 2500), ("P", 4000)])
def test_a_picture_within_the_memory_bound_is_decoded_once_not_three_times(mode, side):
    out = io.BytesIO()
    Image.new(mode, (side, side)).save(out, "PNG")
    data = out.getvalue()
    estimate = _decoding_bytes(mode, side * side)
    assert estimate < MAX_DECODED_BYTES
    peak_rss_reset()
    before = peak_rss_mb()
    checked = check_attachment(name="big.png", content_type="image/png", data=data)
    grew = peak_rss_mb() - before
    assert checked.thumbnail and (checked.width, checked.height) == (side, side)
    # The header's estimate holds (turned, converted and then shrunk, a 3600 x 3600 RGB
    # picture held three full copies, 150 MB and more).
    assert grew * 1024 * 1024 <= estimate, f"grew {grew:.0f} MB, estimated {estimate >> 20} MB"


def test_the_send_limit_counts_every_attempt_before_any_photo_is_read(
    customer_client, thread, settings
):
    settings.RATE_SENDS_PER_USER = "2/m"
    answers = []
    for _ in range(3):
        response = customer_client.post(
            "/messages/send/",
            {"body": "look", "key": "not a key!", "photos": [_upload("a.png", _broken_png())]},
        )
        answers.append((response.status_code, response.content.decode()))
    assert [code for code, _ in answers] == [400, 400, 429]
    # The send key was wrong: the photo was never decoded, so its fault is not reported.
    assert "send key is malformed" in answers[0][1]
    assert "could not be read as a picture" not in answers[0][1]
    assert not Entry.objects.exists()


def test_a_broken_picture_with_a_good_key_is_refused_by_name(customer_client, thread):
    response = customer_client.post(
        "/messages/send/",
        {"body": "look", "key": "k-1", "photos": [_upload("a.png", _broken_png())]},
    )
    assert response.status_code == 400
    assert "a.png could not be read as a picture" in response.content.decode()
    assert not Entry.objects.exists() and not Attachment.objects.exists()


def test_a_customer_over_her_file_budget_is_told_so_and_nothing_is_written(
    customer_client, thread, settings, staff
):
    photo = phone_photo("PNG", size=(300, 300))
    stored = len(check_attachment(name="p.png", content_type="image/png", data=photo).data)
    settings.ATTACHMENT_BYTES_PER_CUSTOMER = stored * 2 + stored // 2
    codes = []
    for n in range(3):
        response = customer_client.post(
            "/messages/send/",
            {"body": f"photo {n}", "key": f"k-{n}", "photos": [_upload("deck.png", photo)]},
            HTTP_HX_REQUEST="true",
        )
        codes.append(response.status_code)
    assert codes == [200, 200, 400]
    assert "past its" in response.content.decode() and "MB of files" in response.content.decode()
    assert Entry.objects.count() == 2 and Attachment.objects.count() == 2
    # Words alone still go, and the business's own photos are not counted against her.
    ok = customer_client.post("/messages/send/", {"body": "no photo", "key": "k-words"})
    assert ok.status_code == 302
    staff_client = Client()
    staff_client.force_login(staff)
    sent = staff_client.post(
        f"/staff/chat/{thread.pk}/send/",
        {"body": "ours", "key": "k-staff", "photos": [_upload("s.png", photo)]},
    )
    assert sent.status_code == 302 and Attachment.objects.count() == 3


def test_a_text_whose_photo_is_over_the_budget_arrives_without_it_with_a_note(
    client, fake_twilio, customer, thread, committed, settings
):
    settings.ATTACHMENT_BYTES_PER_CUSTOMER = 10
    url = fake_twilio.add_media(phone_photo(), "image/jpeg")
    form, signature = fake_twilio.inbound(
        "http://127.0.0.1:8000/webhooks/twilio/sms/",
        sender="+15555550123",
        body="The rot",
        media=[(url, "image/jpeg")],
    )
    with committed():
        client.post("/webhooks/twilio/sms/", form, HTTP_X_TWILIO_SIGNATURE=signature)
    assert InboundMessage.objects.get().status == InboundMessage.Status.APPENDED
    reply = Entry.objects.get(kind=Entry.Kind.CUSTOMER_REPLY)
    assert reply.body == "The rot" and reply.attachment_count == 0
    assert "MB of files" in Entry.objects.get(kind=Entry.Kind.INTERNAL_NOTE).body


# -- item 8: what a stored photo tells -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_stored_photos_lose_location_and_device_but_keep_their_orientation(
    staff_client, thread, fmt, content_type
):
    sent = phone_photo(fmt)
    with Image.open(io.BytesIO(sent)) as original:
        assert original.getexif().get_ifd(GPS_IFD)  # the test's photo does carry a location
        original_pixels = original.convert("RGB").tobytes()
    response = staff_client.post(
        f"/staff/chat/{thread.pk}/send/",
        {"body": "The deck", "key": "k-gps", "photos": [_upload("deck", sent, content_type)]},
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    # The bytes anyone can get: the customer's download and Twilio's shared link.
    shared = Client().get(urlsplit(shared_attachment_url(attachment)).path)
    stored = b"".join(shared.streaming_content)
    with Image.open(io.BytesIO(stored)) as kept:
        exif = kept.getexif()
        assert dict(exif.get_ifd(GPS_IFD)) == {}
        assert MAKE not in exif and MODEL not in exif
        assert exif.get(ORIENTATION) == 6
        assert kept.convert("RGB").tobytes() == original_pixels  # not re-encoded
    for needle in (b"iPhone", b"Apple"):
        assert needle not in stored
    with Image.open(attachment.thumbnail.open("rb")) as thumbnail:
        assert thumbnail.size == (48, 64)  # turned as the orientation says


def test_a_heic_original_loses_its_exif_and_xmp_and_keeps_its_picture(staff_client, thread):
    pillow_heif.register_heif_opener()
    sent = phone_photo("HEIF")
    assert b"iPhone" in sent and b"GPSLatitude" in sent
    with Image.open(io.BytesIO(sent)) as original:
        original_pixels = original.convert("RGB").tobytes()
    response = staff_client.post(
        f"/staff/chat/{thread.pk}/send/",
        {"body": "Photo", "key": "k-heic", "photos": [_upload("deck.heic", sent, "image/heic")]},
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    with attachment.file.open("rb") as stored_file:
        stored = stored_file.read()
    for needle in (b"iPhone", b"Apple", b"GPSLatitude"):
        assert needle not in stored
    with Image.open(io.BytesIO(stored)) as kept:
        assert dict(kept.getexif()) == {} and not kept.info.get("xmp", b"").strip()
        assert kept.size == (48, 64)  # turned by its own property, as sent
        assert kept.convert("RGB").tobytes() == original_pixels


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["JPEG", "PNG", "WEBP", "HEIF"]),
    cuts=st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=8)), max_size=4),
)
def test_stripping_a_mangled_photo_never_raises_and_always_ends(fmt, cuts):
    """A file whose structure lies (lengths past its end, counts in the billions) comes back
    as it was or stripped, never an exception, never a loop."""
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(
        fmt, "image/heic"
    )
    data = bytearray(phone_photo(fmt))
    for at, junk in cuts:
        at %= len(data)
        data[at : at + len(junk)] = junk
    started = time.monotonic()
    assert isinstance(strip_metadata(bytes(data), content_type), bytes)
    assert time.monotonic() - started < 1
