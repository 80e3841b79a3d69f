"""The inbound examples in docs/crm-api.md run as written — the curl block with bash, the
Python block with this interpreter — against a live server, from a folder holding the `.env`
that `make run` writes, so they cannot rot. (The outbound receiver block: test_outbound_docs.)
Only the address changes: make run's http://127.0.0.1:8000 becomes the test server's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crm_events.models import Appointment, Invoice
from messaging.models import Entry
from tests.crm_events.conftest import SECRET

DOC = Path(__file__).resolve().parents[2] / "docs" / "crm-api.md"
MAKE_RUN = "http://127.0.0.1:8000"

pytestmark = pytest.mark.django_db(transaction=True)


def block(language: str, section: str) -> str:
    """The first `language` block under the heading `section`."""
    text = DOC.read_text()
    start = text.index(f"\n### {section}\n")
    (source,) = re.findall(rf"```{language}\n(.*?)```", text[start:], flags=re.S)[:1]
    assert MAKE_RUN in source, "the example no longer talks to make run's address"
    return source


@pytest.fixture
def make_run_folder(tmp_path, settings, live_server, customer, project, thread):
    settings.CRM_WEBHOOK_SECRET = SECRET
    (tmp_path / ".env").write_text(f"DEBUG=1\nCRM_WEBHOOK_SECRET={SECRET}\n")
    return tmp_path, live_server.url


def test_the_curl_example_applies_once_and_replays_the_same_answer(make_run_folder):
    folder, url = make_run_folder
    script = block("sh", "curl").replace(MAKE_RUN, url)
    # "Run the last command three times": the same id, timestamp and signature each time.
    script = _repeat_last_command(script, times=3)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    answers = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(answers) == 3 and len(set(answers)) == 1, answers
    assert json.loads(answers[0])["result"] == "applied"
    invoice = Invoice.objects.get(number="2042")
    assert str(invoice.total) == "1250.50"
    (card,) = Entry.objects.filter(kind="event_card", body__startswith="Invoice #2042")
    assert card.body == "Invoice #2042 sent — $1,250.50"


def _repeat_last_command(script: str, *, times: int) -> str:
    """The block ends with one curl command over several lines: run it `times` times, each
    answer on a line of its own."""
    lines = script.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("curl "))
    setup, command = "\n".join(lines[:start]), "\n".join(lines[start:])
    return setup + "\n" + "\n".join([f"{command}\necho"] * times) + "\n"


def test_the_python_example_books_a_visit(make_run_folder):
    folder, url = make_run_folder
    source = block("python", "Python").replace(MAKE_RUN, url)
    run = subprocess.run(
        [sys.executable, "-c", source], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    status, _, body = run.stdout.strip().partition(" ")
    assert status == "200", run.stdout
    assert "'result': 'applied'" in body
    appointment = Appointment.objects.get(external_id="APT-90")
    assert appointment.title == "Stain the deck"
