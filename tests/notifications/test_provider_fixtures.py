"""The provider fixtures in tests/fixtures/twilio and tests/fixtures/postmark are what the
providers send: Twilio's signature example checks against Twilio's own validator and the
documented algorithm, and every Postmark payload goes through anymail's own Postmark webhook
code, so the webhooks built on these fixtures are tested against the real shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from anymail.inbound import AnymailInboundMessage
from anymail.webhooks.postmark import PostmarkInboundWebhookView, PostmarkTrackingWebhookView
from twilio.request_validator import RequestValidator

from notifications.inbound.mail_kinds import MailKind, classify

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TWILIO = FIXTURES / "twilio"
POSTMARK = FIXTURES / "postmark"
# Anymail warns that a view built without basic auth is insecure; these tests only call its
# parsing, never serve it.
pytestmark = pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailInsecureWebhookWarning")


def fixture(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def plain_twilio_signature(token: str, url: str, params: dict) -> str:
    """Twilio's documented scheme, without the library: the full URL, then every parameter
    name followed by its value, names sorted (and a repeated name's values sorted), HMAC-SHA1
    with the auth token, base64."""
    data = url
    for name in sorted(params):
        values = params[name] if isinstance(params[name], list) else [params[name]]
        for value in sorted(set(values)):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# -- Twilio ------------------------------------------------------------------------------------


def test_twilios_signature_example_validates_with_twilios_validator():
    example = fixture(TWILIO, "request-signature.json")
    validator = RequestValidator(example["auth_token"])
    assert validator.validate(example["url"], example["params"], example["expected_signature"])
    assert not validator.validate(example["url"], example["params"], "RSOYDt4T1cUTdK1PDd93/VVr8B8")


def test_twilios_signature_example_matches_the_documented_algorithm():
    example = fixture(TWILIO, "request-signature.json")
    token, url = example["auth_token"], example["url"]
    assert plain_twilio_signature(token, url, example["params"]) == example["expected_signature"]
    assert (
        plain_twilio_signature(token, url, example["repeated_key_params"])
        == example["repeated_key_expected_signature"]
    )
    # Twilio may have signed the URL with the default port written out; validators try both.
    with_port = url.replace(".com/", ".com:443/")
    assert (
        plain_twilio_signature(token, with_port, example["params"])
        == example["same_url_with_port_443_signature"]
    )


def test_twilios_json_body_example_signs_the_body_hash_in_the_url():
    example = fixture(TWILIO, "request-signature.json")
    body_hash = hashlib.sha256(example["json_body"].encode()).hexdigest()
    assert body_hash == example["json_body_sha256"]
    url = f"{example['url']}&bodySHA256={body_hash}"
    assert (
        plain_twilio_signature(example["auth_token"], url, {}) == example["json_body_url_signature"]
    )
    assert RequestValidator(example["auth_token"]).validate(
        url, example["json_body"], example["json_body_url_signature"]
    )


@pytest.mark.parametrize(
    ("name", "photos"),
    [
        ("inbound-sms.json", 0),
        ("inbound-mms-one-photo.json", 1),
        ("inbound-mms-two-photos.json", 2),
    ],
)
def test_inbound_message_fixtures_carry_the_fields_twilio_posts(name, photos):
    fields = fixture(TWILIO, name)
    for required in ("MessageSid", "SmsSid", "AccountSid", "MessagingServiceSid", "From", "To"):
        assert fields[required], required
    assert fields["MessageSid"] == fields["SmsSid"] == fields["SmsMessageSid"]
    assert fields["SmsStatus"] == "received"
    assert fields["ApiVersion"] == "2010-04-01"
    assert int(fields["NumMedia"]) == photos
    assert "Body" in fields and "NumSegments" in fields
    for prefix in ("From", "To"):
        assert {f"{prefix}{part}" for part in ("City", "State", "Zip", "Country")} <= set(fields)
    for i in range(photos):
        assert fields[f"MediaContentType{i}"].startswith("image/")
        assert fields[f"MediaUrl{i}"].startswith("https://api.twilio.com/2010-04-01/Accounts/")
        assert f"/Messages/{fields['MessageSid']}/Media/ME" in fields[f"MediaUrl{i}"]
    assert f"MediaUrl{photos}" not in fields


def test_status_callback_fixtures_carry_status_and_only_failures_an_error_code():
    delivered = fixture(TWILIO, "status-callback-delivered.json")
    undelivered = fixture(TWILIO, "status-callback-undelivered.json")
    assert delivered["MessageStatus"] == "delivered" and "ErrorCode" not in delivered
    assert undelivered["MessageStatus"] == "undelivered"
    assert undelivered["ErrorCode"].isdigit()


# -- Postmark ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["inbound-parsed.json", "inbound-with-raw-email.json", "inbound-spammy-from-name.json"]
)
def test_postmark_inbound_payloads_become_messages_that_a_person_wrote(name):
    event = PostmarkInboundWebhookView().esp_to_anymail_event(fixture(POSTMARK, name))
    assert event.event_type == "inbound"
    assert isinstance(event.message, AnymailInboundMessage)
    assert classify(event.message) == MailKind.HUMAN


def test_postmark_inbound_with_raw_email_keeps_the_original_message_id():
    event = PostmarkInboundWebhookView().esp_to_anymail_event(
        fixture(POSTMARK, "inbound-with-raw-email.json")
    )
    assert event.message["Message-ID"] == "<CAEPk3R+4Zr@mail.example.org>"
    assert event.message.envelope_sender == "envelope-from@example.org"


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("bounce-hard.json", "bounced"),
        ("bounce-spam-complaint.json", "complained"),
        ("delivery.json", "delivered"),
        ("subscription-change-hard-bounce.json", "bounced"),
    ],
)
def test_postmark_tracking_payloads_parse_as_anymail_reads_them(name, event_type):
    event = PostmarkTrackingWebhookView().esp_to_anymail_event(fixture(POSTMARK, name))
    assert event.event_type == event_type
    assert event.message_id == fixture(POSTMARK, name)["MessageID"]
