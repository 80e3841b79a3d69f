"""Sign-in: magic links for customers (one button, once, ten minutes), passwords for staff."""

from __future__ import annotations

import re
from io import StringIO
from urllib.parse import unquote, urlsplit

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from sesame.utils import get_token


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _token(url: str) -> str:
    return re.search(r"sesame=([\w-]+)", url).group(1)


def test_a_known_email_gets_a_link_and_an_unknown_one_the_same_answer(
    client, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post("/login/", {"address": "sarah@example.com", "method": "link"})
        unknown = client.post("/login/", {"address": "nobody@example.com", "method": "link"})
    assert known.status_code == unknown.status_code == 200

    def page(response, email):
        html = response.content.decode().replace(email, "EMAIL")
        # Per-response values: the CSRF token and the CSP nonce.
        html = re.sub(r'nonce="[^"]+"', "", html)
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", html)

    assert page(known, "sarah@example.com") == page(unknown, "nobody@example.com")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sarah@example.com"]
    assert "/login/magic/?sesame=" in mail.outbox[0].body


def test_a_malformed_email_is_a_form_error(client, db):
    response = client.post("/login/", {"address": "sarah@not an email", "method": "link"})
    assert response.status_code == 400
    assert "valid email" in response.content.decode()
    assert mail.outbox == []


def test_opening_the_link_shows_one_sign_in_button_and_does_not_sign_in(client, customer):
    token = get_token(customer.user)
    response = client.get(f"/login/magic/?sesame={token}")
    assert response.status_code == 200
    assert response.content.decode().count('type="submit"') == 1
    assert "Sign in" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Opening it (as a mail scanner would) did not spend it.
    assert client.get(f"/login/magic/?sesame={token}").status_code == 200


def test_pressing_sign_in_signs_in_and_the_link_then_dies(client, customer):
    token = get_token(customer.user)
    response = client.post("/login/magic/", {"sesame": token})
    assert response.status_code == 302
    assert response.url == "/messages/"
    assert client.session["_auth_user_id"] == str(customer.user.pk)

    client.logout()
    assert client.post("/login/magic/", {"sesame": token}).status_code == 400
    assert client.get(f"/login/magic/?sesame={token}").status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("token", ["", "garbage", "AAAAAgz1qNxNWjD7Vc3PItgb"])
def test_a_wrong_link_gets_a_clear_400(client, customer, token):
    for response in (
        client.get(f"/login/magic/?sesame={token}"),
        client.post("/login/magic/", {"sesame": token}),
    ):
        assert response.status_code == 400
        assert "doesn't work" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_expired_link_gets_a_clear_400(client, customer, settings):
    token = get_token(customer.user)
    settings.SESAME_MAX_AGE = -1
    assert client.post("/login/magic/", {"sesame": token}).status_code == 400
    assert "_auth_user_id" not in client.session


def test_login_link_command_prints_a_working_one_time_link(client, customer, capsys):
    out = StringIO()
    call_command("login_link", "sarah@example.com", stdout=out)
    url = out.getvalue().strip()
    assert url.startswith("http://") and "/login/magic/?sesame=" in url
    assert client.get(_path(url)).status_code == 200
    assert client.post("/login/magic/", {"sesame": _token(url)}).url == "/messages/"


def test_login_link_command_accepts_a_username_and_refuses_strangers(staff):
    out = StringIO()
    call_command("login_link", "mike", stdout=out)
    assert "sesame=" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("login_link", "nobody@example.com")


def test_staff_sign_in_with_username_and_password_lands_on_the_project_list(client, staff):
    response = client.post(
        "/staff/login/", {"username": "mike", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/staff/projects/"
    assert client.get(response["Location"]).status_code == 200


def test_staff_signed_in_by_magic_link_or_default_redirect_lands_on_their_page(client, staff):
    client.force_login(staff)
    assert client.get("/").url == "/staff/projects/"


def test_staff_wrong_password_is_refused(client, staff):
    response = client.post("/staff/login/", {"username": "mike", "password": "wrong"})
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_signing_out(customer_client):
    assert customer_client.post("/logout/").status_code == 302
    assert customer_client.get("/messages/").status_code == 302


# -- rate limits ------------------------------------------------------------------------------


def test_sign_in_links_for_one_address_are_throttled_alike_for_known_and_unknown(
    client, customer, settings, django_capture_on_commit_callbacks
):
    settings.RATE_LOGIN_LINKS_PER_ADDRESS = "3/h"
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            client.post("/login/", {"address": "sarah@example.com", "method": "link"})
            for _ in range(5)
        ]
        strangers = [
            client.post("/login/", {"address": "NOBODY@example.com", "method": "link"})
            for _ in range(5)
        ]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert [r.status_code for r in strangers] == [200, 200, 200, 429, 429]
    assert "try again in a few minutes" in answers[-1].content.decode()
    assert len(mail.outbox) == 3


def test_sign_in_links_from_one_client_are_throttled(client, db, settings):
    settings.RATE_LOGIN_LINKS_PER_CLIENT = "4/h"
    codes = [
        client.post("/login/", {"address": f"p{i}@example.com", "method": "link"}).status_code
        for i in range(6)
    ]
    assert codes == [200, 200, 200, 200, 429, 429]
    # Another client is not affected.
    other = client.post(
        "/login/", {"address": "x@example.com", "method": "link"}, REMOTE_ADDR="203.0.113.9"
    )
    assert other.status_code == 200


def test_a_mail_provider_outage_is_not_a_500_and_says_the_same(
    client, customer, fake_postmark, django_capture_on_commit_callbacks, caplog
):
    fake_postmark.fail_next(500, 500, 500)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/login/", {"address": "sarah@example.com", "method": "link"})
    assert response.status_code == 200
    assert "If sarah@example.com is on file" in response.content.decode()
    assert "could not send a sign-in link" in caplog.text


def test_repeated_wrong_staff_passwords_lock_sign_in_even_with_the_right_one(
    client, staff, settings
):
    settings.RATE_STAFF_LOGIN_FAILURES = "5/15m"
    for _ in range(6):
        client.post("/staff/login/", {"username": "mike", "password": "wrong"})
    response = client.post(
        "/staff/login/", {"username": "mike", "password": "correct horse battery"}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_few_wrong_staff_passwords_do_not_lock_anyone_out(client, staff):
    for _ in range(3):
        client.post("/staff/login/", {"username": "mike", "password": "wrong"})
    response = client.post(
        "/staff/login/", {"username": "mike", "password": "correct horse battery"}
    )
    assert response.status_code == 302


@pytest.mark.parametrize("spelling", [" mike", "mike ", "ｍｉｋｅ", "mike\u3000", "Mike"], ids=repr)
def test_staff_lockout_counts_every_spelling_the_form_signs_in_with(
    client, staff, settings, spelling
):
    settings.RATE_STAFF_LOGIN_FAILURES = "5/15m"
    settings.RATE_STAFF_LOGIN_FAILURES_PER_CLIENT = "100/15m"  # the username's counter alone
    for _ in range(5):
        client.post("/staff/login/", {"username": spelling, "password": "wrong"})
    for name in ("mike", spelling):
        response = client.post(
            "/staff/login/", {"username": name, "password": "correct horse battery"}
        )
        assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_five_failures_in_fifteen_minutes_lock_the_sixth_attempt(client, staff, settings):
    settings.RATE_STAFF_LOGIN_FAILURES = "5/15m"
    settings.RATE_STAFF_LOGIN_FAILURES_PER_CLIENT = "100/15m"
    answers = [
        client.post("/staff/login/", {"username": "mike", "password": "wrong"}).status_code
        for _ in range(5)
    ]
    assert answers == [400] * 5
    right = {"username": "mike", "password": "correct horse battery"}
    assert client.post("/staff/login/", right).status_code == 429
    # The client's own limit counts the same way.
    settings.RATE_STAFF_LOGIN_FAILURES_PER_CLIENT = "3/15m"
    other = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(3):
        client.post("/staff/login/", {"username": "kim", "password": "x"}, **other)
    assert (
        client.post("/staff/login/", {"username": "ann", "password": "x"}, **other).status_code
        == 429
    )


def test_the_address_limit_counts_every_spelling_that_reaches_one_inbox(
    client, other_customer, settings, django_capture_on_commit_callbacks
):
    """danıel@ (dotless ı) and ſ-spellings are other addresses, on SQLite and PostgreSQL
    alike (PostgreSQL's UPPER made danıel@ Daniel's, with a counter of its own)."""
    settings.RATE_LOGIN_LINKS_PER_ADDRESS = "3/h"
    with django_capture_on_commit_callbacks(execute=True):
        lookalikes = [
            client.post("/login/", {"address": e, "method": "link"}).status_code
            for e in ("danıel@example.com", "DANıEL@example.com", "daniel@exampʟe.com")
        ]
        variants = [
            client.post("/login/", {"address": e, "method": "link"}).status_code
            for e in (
                "daniel@example.com",
                "Daniel@Example.com",
                " DANIEL@EXAMPLE.COM",
                "daniel@example.com",
            )
        ]
    assert [m.to for m in mail.outbox] == [["daniel@example.com"]] * 3
    assert variants[:3] == [200, 200, 200]
    assert all(code in (200, 400) for code in lookalikes)


def test_the_admins_password_form_is_no_way_around_the_staff_lockout(client, staff, settings):
    settings.RATE_STAFF_LOGIN_FAILURES = "5/15m"
    for _ in range(5):
        client.post("/staff/login/", {"username": "mike", "password": "wrong"})
    right = {"username": "mike", "password": "correct horse battery"}
    response = client.post("/admin/login/?next=/admin/", right)
    assert response.status_code == 302
    assert response["Location"] == "/staff/login/?next=/admin/"
    assert "_auth_user_id" not in client.session
    # Signing in to the admin is the staff sign-in, and takes you back.
    chain = client.get("/admin/", follow=True).redirect_chain
    assert unquote(chain[-1][0]) == "/staff/login/?next=/admin/"
    settings.RATE_STAFF_LOGIN_FAILURES = "100/15m"
    back = client.post("/staff/login/?next=/admin/", right)
    assert back.status_code == 302 and back["Location"] == "/admin/"
