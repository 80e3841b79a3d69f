"""/csp-report/ takes posts from anyone: it is rate-limited per client, reads at most a
report's worth, and logs each violation as one line of JSON that no field can break."""

from __future__ import annotations

import json
import logging

from django.conf import settings as django_settings

from portal.security import MAX_REPORT_BYTES

FORGED = "inline\n2026-12-04 22:00:00 ERROR portal.auth: staff mike signed in from 10.0.0.1"


def _report(**fields) -> str:
    return json.dumps({"csp-report": {"effective-directive": "script-src-elem", **fields}})


def _post(client, body: str, **extra):
    return client.post("/csp-report/", body, content_type="application/csp-report", **extra)


def _logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "portal.csp"]


def test_a_newline_in_a_report_field_cannot_forge_a_log_line(client, caplog):
    fields = {"blocked-uri": FORGED, "document-uri": "https://x/\r\nfake", "line-number": 1}
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        assert _post(client, _report(**fields)).status_code == 204
    (record,) = _logged(caplog)
    # As the configured formatter writes it: one line.
    formatter = logging.Formatter(django_settings.LOGGING["formatters"]["plain"]["format"])
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert record.csp["blocked"] == FORGED  # kept whole, as data
    assert json.loads(line.split("CSP violation: ", 1)[1])["blocked"] == FORGED


def test_csp_reports_from_one_client_are_rate_limited(client, caplog, settings):
    settings.RATE_CSP_REPORTS_PER_CLIENT = "3/m"
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        answers = [
            _post(client, _report(**{"blocked-uri": "inline"})).status_code for _ in range(5)
        ]
        other = _post(client, _report(), REMOTE_ADDR="203.0.113.5").status_code
    assert answers == [204, 204, 204, 429, 429] and other == 204
    assert len(_logged(caplog)) == 4


def test_a_report_over_the_cap_is_refused_and_a_huge_batch_logs_a_page_s_worth(client, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        big = _report(**{"blocked-uri": "x" * MAX_REPORT_BYTES})
        assert _post(client, big).status_code == 413
        batch = [
            {"type": "csp-violation", "body": {"effectiveDirective": "img-src", "lineNumber": n}}
            for n in range(500)
        ]
        assert _post(client, json.dumps(batch)).status_code == 204
    assert len(_logged(caplog)) == 10


def test_a_report_nested_past_pythons_recursion_limit_is_a_400(client):
    assert _post(client, "[" * 30_000 + "]" * 30_000).status_code == 400
