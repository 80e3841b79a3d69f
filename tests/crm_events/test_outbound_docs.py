"""The Python receiver in docs/crm-api.md runs as written: started as its own process, it
verifies the portal's events with the official library and keeps each once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_events.models import WebhookDelivery
from crm_events.outbound import outbox
from messaging import actions as thread_actions
from tests.crm_events.conftest import OUT_SECRET

DOC = Path(__file__).resolve().parents[2] / "docs" / "crm-api.md"


def _receiver_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (source,) = [b for b in blocks if b.startswith("# receiver.py")]
    return source


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def documented_receiver(tmp_path, settings):
    path = tmp_path / "receiver.py"
    path.write_text(_receiver_source())
    port = _free_port()
    env = {**os.environ, "CRM_OUTBOUND_SECRET": OUT_SECRET, "PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    settings.CRM_OUTBOUND_URL = f"http://127.0.0.1:{port}/porchlight"
    settings.CRM_OUTBOUND_SECRET = [OUT_SECRET]
    yield process
    process.terminate()
    process.wait(timeout=5)


def test_the_documented_receiver_verifies_and_keeps_each_event_once(
    customer, thread, documented_receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        entry = thread_actions.post_customer_reply(customer=customer, body="Is Thursday ok?")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.last_status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        outbox.resend(deliveries=WebhookDelivery.objects.all())
    assert WebhookDelivery.objects.get().status == "delivered"
    documented_receiver.terminate()
    output = documented_receiver.communicate(timeout=5)[0]
    (line,) = output.splitlines()  # the resend was recognised and not printed again
    assert line.startswith(f"message.received {delivery.event.event_id} customer {customer.pk} # 1")
    assert f'"entry_id": {entry.pk}' in line
