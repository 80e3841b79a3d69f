"""One owner for a Delivery's status: every transition is a method of `DeliveryQuerySet`
(notifications/models.py), so the rules — what each step leaves from, forward only by rank —
live in one place.

A static check over the apps' source, like tests/test_one_writer.py. In every module that
deals with deliveries (it names `Delivery` or `deliveries`), outside `DeliveryQuerySet`, it
finds: `.update(status=...)` and the other queryset writes given a status; `x.status = ...`
(plain, tuple or augmented); `setattr(x, "status", ...)`; `save(update_fields=[..."status"])`.
A write on another model's manager (`InboundMessage.objects....update(status=...)`) is that
model's business. A new row's first status is chosen where rows are planned: `Delivery(...)`
with a status only in notifications/outbound/planning.py."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["portal", "messaging", "notifications", "crm_events"]
OWNER_MODULE = ROOT / "notifications" / "models.py"
OWNER_CLASS = "DeliveryQuerySet"
# The CRM webhooks' outbox rows (crm_events/outbound/models.py) have their own owner, checked
# by tests/crm_events/test_outbound_owners.py.
OTHER_OWNERS = {"WebhookDeliveryQuerySet", "WebhookEndpointQuerySet"}
PLANNER = ROOT / "notifications" / "outbound" / "planning.py"
WRITE_METHODS = {"update", "create", "get_or_create", "update_or_create", "bulk_update"}


def _source_files():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def _another_models_manager(receiver: ast.expr) -> bool:
    """`InboundMessage.objects...`: a write through another model's own manager."""
    text = ast.unparse(receiver)
    head = text.split(".", 1)[0]
    return head[:1].isupper() and head != "Delivery" and ".objects" in text


def _names_status(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == "status"


def _is_status_target(target: ast.expr) -> bool:
    if isinstance(target, ast.Attribute):
        return target.attr == "status"
    if isinstance(target, ast.Tuple | ast.List):
        return any(_is_status_target(t) for t in target.elts)
    return False


def _writes_status(call: ast.Call, *, may_construct: bool) -> bool:
    func = call.func
    # `**changes` (a None keyword) may carry a status too.
    keywords = {k.arg for k in call.keywords}
    gives_status = "status" in keywords or None in keywords
    if isinstance(func, ast.Attribute) and func.attr in WRITE_METHODS:
        return gives_status and not _another_models_manager(func.value)
    if isinstance(func, ast.Attribute) and func.attr == "save":
        fields = [k.value for k in call.keywords if k.arg == "update_fields"]
        return any(_names_status(e) for f in fields for e in getattr(f, "elts", []))
    if isinstance(func, ast.Name) and func.id == "setattr":
        return len(call.args) > 1 and _names_status(call.args[1])
    if isinstance(func, ast.Name) and func.id == "Delivery":
        return gives_status and not may_construct
    return False


def _status_writes(tree: ast.AST, *, may_construct: bool = False) -> list[int]:
    """Line numbers of the status writes in `tree`, leaving out the owner class's body."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in {OWNER_CLASS, *OTHER_OWNERS}:
            skipped |= {id(inner) for inner in ast.walk(node)}
    lines = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_is_status_target(t) for t in targets):
                lines.append(node.lineno)
        if isinstance(node, ast.Call) and _writes_status(node, may_construct=may_construct):
            lines.append(node.lineno)
    return sorted(set(lines))


def _deals_with_deliveries(source: str) -> bool:
    return "Delivery" in source or "deliveries" in source


def test_only_the_delivery_queryset_writes_a_deliverys_status():
    offenders = {}
    for path in _source_files():
        source = path.read_text()
        if not _deals_with_deliveries(source):
            continue
        lines = _status_writes(ast.parse(source, filename=str(path)), may_construct=path == PLANNER)
        if lines:
            offenders[str(path.relative_to(ROOT))] = lines
    assert offenders == {}, f"Delivery.status written outside {OWNER_CLASS}: {offenders}"


def test_the_check_sees_the_owners_own_writes():
    # Guards the check: with the owner class counted, its transitions are found.
    tree = ast.parse(OWNER_MODULE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == OWNER_CLASS:
            node.name = "Renamed"
    assert len(_status_writes(tree)) >= 8


PLANTED = """
from notifications.models import Delivery

def sweep(rows, delivery, changes):
    rows.filter(status="sending").update(status=Delivery.Status.FAILED)
    delivery.status = "sent"
    delivery.status, delivery.send_after = "queued", None
    setattr(delivery, "status", "held")
    delivery.save(update_fields=["status"])
    Delivery.objects.filter(pk=1).update(**changes)
    Delivery(status="queued")
    InboundMessage.objects.filter(pk=1).update(status="dismissed")  # another model's: fine
"""


def test_the_check_finds_planted_writes():
    assert _status_writes(ast.parse(PLANTED)) == [5, 6, 7, 8, 9, 10, 11]
