"""One owner for each state of the outbound webhooks, kept so by reading the source (like
tests/test_delivery_status_owner.py for notifications' Delivery):

- a WebhookDelivery's `status` is written only by `WebhookDeliveryQuerySet` (claim, record
  delivered, retry, fail, re-drive, resend), each a conditional UPDATE from the statuses
  it may leave;
- a WebhookEndpoint's `enabled` only by `WebhookEndpointQuerySet` (disable, enable).

In every module of ours that names the model, outside the owner class, it finds assignments
(`x.status = …`, in tuples too), `setattr(x, "status", …)`, queryset writes given the field
(`update`, `create`, `get_or_create`, `update_or_create`, `bulk_update`, or `**changes`),
`save(update_fields=[…the field…])`, and constructing the model with the field."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
APPS = ["portal", "messaging", "notifications", "crm_events"]
OWNER_MODULE = ROOT / "crm_events" / "outbound" / "models.py"
WRITE_METHODS = {"update", "create", "get_or_create", "update_or_create", "bulk_update"}

# (the model, its field with one owner, the owner class)
OWNED = [
    ("WebhookDelivery", "status", "WebhookDeliveryQuerySet"),
    ("WebhookEndpoint", "enabled", "WebhookEndpointQuerySet"),
]


def _targets_field(target: ast.expr, field: str) -> bool:
    if isinstance(target, ast.Attribute):
        return target.attr == field
    if isinstance(target, ast.Tuple | ast.List):
        return any(_targets_field(t, field) for t in target.elts)
    return False


def _other_models_manager(receiver: ast.expr, model: str) -> bool:
    head = ast.unparse(receiver).split(".", 1)[0]
    return head[:1].isupper() and head != model and ".objects" in ast.unparse(receiver)


def _writes(call: ast.Call, model: str, field: str) -> bool:
    func = call.func
    keywords = {k.arg for k in call.keywords}
    gives = field in keywords or None in keywords
    if isinstance(func, ast.Attribute) and func.attr in WRITE_METHODS:
        return gives and not _other_models_manager(func.value, model)
    if isinstance(func, ast.Attribute) and func.attr == "save":
        fields = [k.value for k in call.keywords if k.arg == "update_fields"]
        return any(
            isinstance(e, ast.Constant) and e.value == field
            for f in fields
            for e in getattr(f, "elts", [])
        )
    if isinstance(func, ast.Name) and func.id == "setattr":
        return (
            len(call.args) > 1
            and isinstance(call.args[1], ast.Constant)
            and call.args[1].value == field
        )
    if isinstance(func, ast.Name) and func.id == model:
        return gives
    return False


def field_writes(tree: ast.AST, *, model: str, field: str, owner: str) -> list[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == owner:
            skipped |= {id(inner) for inner in ast.walk(node)}
    lines = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_targets_field(t, field) for t in targets):
                lines.append(node.lineno)
        if isinstance(node, ast.Call) and _writes(node, model, field):
            lines.append(node.lineno)
    return sorted(set(lines))


def _sources():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


@pytest.mark.parametrize(("model", "field", "owner"), OWNED)
def test_only_the_owner_queryset_writes_the_state(model, field, owner):
    offenders = {}
    for path in _sources():
        source = path.read_text()
        if model not in source:
            continue
        lines = field_writes(ast.parse(source), model=model, field=field, owner=owner)
        if lines:
            offenders[str(path.relative_to(ROOT))] = lines
    assert offenders == {}, f"{model}.{field} written outside {owner}: {offenders}"


@pytest.mark.parametrize(("model", "field", "owner"), OWNED)
def test_the_check_sees_the_owners_own_writes(model, field, owner):
    tree = ast.parse(OWNER_MODULE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == owner:
            node.name = "Renamed"
    assert len(field_writes(tree, model=model, field=field, owner=owner)) >= 2


PLANTED = """
from crm_events.models import WebhookDelivery

def sweep(rows, delivery, changes):
    rows.filter(status="sending").update(status="pending")
    delivery.status = "delivered"
    delivery.status, delivery.next_attempt_at = "pending", None
    setattr(delivery, "status", "failed")
    delivery.save(update_fields=["status"])
    WebhookDelivery.objects.filter(pk=1).update(**changes)
    WebhookDelivery(status="delivered")
    Delivery.objects.filter(pk=1).update(status="sent")  # another model's: its own business
"""


def test_the_check_finds_planted_writes():
    lines = field_writes(
        ast.parse(PLANTED), model="WebhookDelivery", field="status", owner="WebhookDeliveryQuerySet"
    )
    assert lines == [5, 6, 7, 8, 9, 10, 11]
