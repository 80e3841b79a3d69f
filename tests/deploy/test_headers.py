"""Every page carries a strict Content-Security-Policy whose nonce is the one on its script
tags, and `Cache-Control: private, no-store` when it holds someone's data; browsers' reports
of what the policy blocked are logged; the logo is served through the storage API and no
uploaded file is reachable by a URL of its own."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from messaging import actions
from tests.factories import BusinessFactory

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def policy(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict(response) -> None:
    csp = policy(response)
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in csp[directive]
        assert "'unsafe-eval'" not in csp[directive]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["report-uri"] == ["/csp-report/"]
    html = response.content.decode()
    # Every script is a file of ours ('self'); ours also carry the page's nonce, the header's.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert " src=" in tag, tag
    nonces = set(re.findall(r'<script[^>]* nonce="([^"]+)"', html))
    assert len(nonces) <= 1
    for nonce in nonces:
        assert f"'nonce-{nonce}'" in csp["script-src"]
    assert not re.search(r"\son[a-z]+=\"", html), "an inline event handler"
    assert ' style="' not in html, "an inline style"


def never_stored(response) -> bool:
    """private and no-store, whatever else a view's own never_cache adds (the admin's,
    Django's LoginView)."""
    return {"private", "no-store"} <= {v.strip() for v in response["Cache-Control"].split(",")}


@pytest.fixture
def pages(customer_client, thread, staff, project):
    actions.post_staff_message(thread=thread, author=staff, body="Hi Sarah")
    return customer_client


CUSTOMER_PAGES = ["/project/", "/invoices/", "/messages/", "/schedule/", "/settings/notifications/"]


@pytest.mark.parametrize("path", CUSTOMER_PAGES)
def test_customer_pages_carry_a_strict_policy_and_are_never_stored(pages, path):
    response = pages.get(path)
    assert response.status_code == 200
    assert_strict(response)
    assert re.search(r'<script[^>]* nonce="', response.content.decode())
    assert response["Cache-Control"] == "private, no-store"


def test_staff_pages_and_the_admin_carry_the_policy_and_are_never_stored(
    staff_client, thread, project
):
    for path in [
        "/staff/projects/",
        f"/staff/chat/{thread.pk}/",
        "/admin/",
        "/admin/password_change/",
    ]:
        response = staff_client.get(path)
        assert response.status_code == 200, path
        assert_strict(response)
        assert never_stored(response), path


def test_sign_in_pages_and_fragments_carry_the_policy_too(client, customer_client, thread):
    for path in ["/login/", "/staff/login/"]:
        response = client.get(path)
        assert_strict(response)
        assert never_stored(response)
    fragment = customer_client.get("/messages/entries/?before=99", HTTP_HX_REQUEST="true")
    assert "script-src" in fragment["Content-Security-Policy"]
    assert fragment["Cache-Control"] == "private, no-store"


def test_the_policy_names_its_reporting_endpoint(client, db):
    response = client.get("/login/")
    assert policy(response)["report-to"] == ["csp"]
    assert response["Reporting-Endpoints"] == 'csp="http://testserver/csp-report/"'


def test_a_refused_host_still_gets_the_policy(client, db):
    response = client.get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "script-src" in response["Content-Security-Policy"]
    assert "Reporting-Endpoints" not in response


def test_views_that_choose_their_own_caching_keep_it(client, db):
    assert "no-cache" in client.get("/sw.js")["Cache-Control"]
    assert client.get("/manifest.webmanifest")["Cache-Control"] != "private, no-store"


def test_htmx_runs_without_eval_or_its_inline_indicator_styles(pages):
    html = pages.get("/messages/").content.decode()
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html).group(1))
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False


@pytest.mark.parametrize(
    "body",
    [
        {
            "csp-report": {
                "document-uri": "https://portal.example.com/messages/",
                "violated-directive": "script-src-elem",
                "effective-directive": "script-src-elem",
                "blocked-uri": "inline",
                "source-file": "https://portal.example.com/messages/",
                "line-number": 12,
            }
        },
        [
            {
                "type": "csp-violation",
                "url": "https://portal.example.com/messages/",
                "body": {
                    "documentURL": "https://portal.example.com/messages/",
                    "effectiveDirective": "script-src-elem",
                    "blockedURL": "inline",
                    "sourceFile": "https://portal.example.com/messages/",
                    "lineNumber": 12,
                },
            }
        ],
    ],
    ids=["report-uri", "report-to"],
)
def test_a_violation_report_is_logged_in_either_format(client, caplog, body):
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        response = client.post(
            "/csp-report/", json.dumps(body), content_type="application/csp-report"
        )
    assert response.status_code == 204
    (record,) = [r for r in caplog.records if r.name == "portal.csp"]
    assert record.csp["directive"] == "script-src-elem" and record.csp["blocked"] == "inline"
    assert record.csp["document"] == "https://portal.example.com/messages/"
    assert json.loads(record.getMessage().removeprefix("CSP violation: ")) == record.csp


def test_a_report_that_is_not_json_is_refused_and_logs_nothing(client, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        assert client.post("/csp-report/", "nope", content_type="text/plain").status_code == 400
        assert client.get("/csp-report/").status_code == 405
    assert [r for r in caplog.records if r.name == "portal.csp"] == []


# -- media ---------------------------------------------------------------------------------


@pytest.fixture
def memory_storage(settings):
    """Uploads kept by another storage backend altogether: whatever serves them must go
    through the storage API, not a path on disk."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


def test_the_logo_is_served_publicly_through_the_storage_api(db, memory_storage):
    business = BusinessFactory()
    business.logo.save("mikes.png", ContentFile(PNG))
    client = Client()
    response = client.get(business.logo_url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=86400"
    assert 'src="' + business.logo_url.replace("&", "&amp;") + '"' in (
        client.get("/login/").content.decode()
    )


def test_a_new_logo_gets_a_new_url(db, memory_storage):
    business = BusinessFactory()
    business.logo.save("mikes.png", ContentFile(PNG))
    first = business.logo_url
    business.logo.save("mikes.png", ContentFile(PNG + b" "))
    assert business.logo_url != first
    assert business.logo_url.split("?")[0] == first.split("?")[0]


def test_an_svg_logo_can_run_nothing_and_other_uploads_are_downloads(db, memory_storage):
    business = BusinessFactory()
    business.logo.save("logo.svg", ContentFile(b"<svg xmlns='http://www.w3.org/2000/svg'/>"))
    response = Client().get(business.logo_url)
    assert response["Content-Type"] == "image/svg+xml"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "default-src 'none'" in response["Content-Security-Policy"]
    business.logo.save("logo.html", ContentFile(b"<script>alert(1)</script>"))
    response = Client().get(business.logo_url)
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


def test_no_logo_is_a_404(db):
    business = BusinessFactory()
    assert business.logo_url == ""
    assert Client().get(f"/logo/{business.pk}/").status_code == 404


def test_uploaded_files_have_no_url_of_their_own(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    business = BusinessFactory()
    business.logo.save("mikes.png", ContentFile(PNG))
    assert (tmp_path / business.logo.name).exists()
    assert Client().get(business.logo.url).status_code == 404
    assert Client().get(f"/static/../media/{business.logo.name}").status_code == 404


def test_the_admin_links_the_current_logo_to_where_it_is_served(db, memory_storage, staff):
    business = BusinessFactory()
    business.logo.save("mikes.png", ContentFile(PNG))
    staff.is_superuser = True
    staff.save()
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/portal/business/{business.pk}/change/").content.decode()
    assert f'href="{business.logo_url.replace("&", "&amp;")}"' in page
    assert "/media/" not in page
    assert client.get(business.logo_url).status_code == 200
