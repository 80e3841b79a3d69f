"""Response headers every page carries, and where browsers report what the policy blocked.

- `ContentSecurityPolicyMiddleware`: django-csp's policy (settings.CONTENT_SECURITY_POLICY)
  on every response, plus the Reporting-Endpoints header its `report-to` names.
- `PrivatePagesMiddleware`: `Cache-Control: private, no-store` on every response that did not
  choose its own caching: customer and staff pages (the admin included), fragments and files
  hold one person's data, which no shared cache and no back-button cache may keep.
- `csp_report`: the endpoint of both report-uri and report-to; it logs each violation as
  one line of JSON. Anyone can post to it, so it is rate-limited per client, read at most
  MAX_REPORT_BYTES, and nothing in a report reaches the log raw (a newline in a field would
  forge a log line of its own).
"""

from __future__ import annotations

import json
import logging

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal import throttles

logger = logging.getLogger("portal.csp")

# A report is small; anything bigger is not a browser's report. (The app server refuses a
# larger body before Django reads it: portal/body_limits.py.)
MAX_REPORT_BYTES = 64 * 1024
# A Reporting API batch may hold several; more than this in one post is not a page's worth.
MAX_VIOLATIONS_LOGGED = 10


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = super().process_response(request, response)
        if "Content-Security-Policy" in response:
            # Where `report-to csp` sends reports (the Reporting API wants an absolute URL).
            try:
                url = request.build_absolute_uri(settings.CSP_REPORT_PATH)
            except DisallowedHost:  # a refused Host: no endpoint; report-uri still works
                return response
            response.headers.setdefault("Reporting-Endpoints", f'csp="{url}"')
        return response


class PrivatePagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response:
            response["Cache-Control"] = "private, no-store"
        return response


def _violations(body: bytes) -> list[dict]:
    """The violations in a report-uri body ({"csp-report": {...}}) or a Reporting API batch
    ([{"type": "csp-violation", "body": {...}}, ...])."""
    data = json.loads(body)
    if isinstance(data, dict) and isinstance(data.get("csp-report"), dict):
        return [data["csp-report"]]
    if isinstance(data, list):
        return [
            item["body"]
            for item in data
            if isinstance(item, dict)
            and item.get("type") == "csp-violation"
            and isinstance(item.get("body"), dict)
        ]
    return []


def _field(report: dict, *names: str) -> str:
    for name in names:
        if report.get(name):
            return str(report[name])[:300]
    return ""


# What is logged of a violation, under stable names, whichever format it came in.
_FIELDS = {
    "directive": ("effectiveDirective", "effective-directive", "violated-directive"),
    "blocked": ("blockedURL", "blocked-uri"),
    "document": ("documentURL", "document-uri"),
    "source": ("sourceFile", "source-file"),
    "line": ("lineNumber", "line-number"),
    "sample": ("sample", "script-sample"),
}


def _structured(report: dict) -> dict[str, str]:
    return {name: _field(report, *names) for name, names in _FIELDS.items()}


@csrf_exempt  # browsers send reports without a token, by design
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    if throttles.CSP_REPORTS_PER_CLIENT.exceeded(request):
        return HttpResponse(status=429)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponse(status=400)
    if declared > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    body = request.read(MAX_REPORT_BYTES + 1)  # never more, whatever was declared
    if len(body) > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    try:
        violations = _violations(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return HttpResponse(status=400)
    for report in violations[:MAX_VIOLATIONS_LOGGED]:
        violation = _structured(report)
        # One line whatever the fields hold: JSON escapes newlines and every other control
        # character (and, ASCII only, the Unicode line separators too).
        logger.warning(
            "CSP violation: %s",
            json.dumps(violation, ensure_ascii=True, sort_keys=True),
            extra={"csp": violation},
        )
    return HttpResponse(status=204)
