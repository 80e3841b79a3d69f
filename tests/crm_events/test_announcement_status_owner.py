"""One owner for an announcement's status: `_move` in crm_events/announcements/actions.py,
a conditional UPDATE from the statuses each one may be reached from. A static check over the
apps' source like tests/crm_events/test_one_status_writer.py: in every module that names
`Announcement`, any write given a status (`update`, `create`, a constructor, an assignment to
`.status`, `setattr`, `update_fields`) outside `_move` is an offence. Writes through another
model's manager by name (`Delivery.objects...`) are that model's business."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from crm_events.announcements import actions
from crm_events.announcements.models import Announcement

ROOT = Path(__file__).resolve().parents[2]
APPS = ["portal", "messaging", "notifications", "crm_events"]
OWNER = ("crm_events/announcements/actions.py", "_move")
WRITES = {"update", "create", "get_or_create", "update_or_create", "bulk_update", "bulk_create"}


def status_writes(source: str) -> list[tuple[int, str]]:
    found = []

    class Finder(ast.NodeVisitor):
        stack: list[str] = []

        def visit_FunctionDef(self, node):
            self.stack.append(node.name)
            self.generic_visit(node)
            self.stack.pop()

        def _add(self, node):
            found.append((node.lineno, self.stack[-1] if self.stack else "<module>"))

        def visit_Assign(self, node):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    self._add(node)
            self.generic_visit(node)

        def visit_Call(self, node):
            func = node.func
            keywords = {k.arg for k in node.keywords}
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            head = receiver.split(".")[0]
            other_model = head[:1].isupper() and head != "Announcement"
            gives_status = "status" in keywords or None in keywords  # None: **changes
            constructs = name == "Announcement" and gives_status
            if constructs or (name in WRITES and not other_model and gives_status):
                self._add(node)
            elif name == "setattr" and len(node.args) > 1:
                if isinstance(node.args[1], ast.Constant) and node.args[1].value == "status":
                    self._add(node)
            elif name == "save" and "status" in ast.unparse(node):
                self._add(node)
            self.generic_visit(node)

    Finder().visit(ast.parse(source))
    return found


def test_only_move_writes_an_announcements_status():
    offenders = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            source = path.read_text()
            if "migrations" in path.parts or "Announcement" not in source:
                continue
            writes = [w for w in status_writes(source) if (relative, w[1]) != OWNER]
            if writes:
                offenders[relative] = writes
    assert offenders == {}


def test_the_check_sees_the_owner_and_an_offence():
    owner = (ROOT / OWNER[0]).read_text()
    assert OWNER[1] in {function for _, function in status_writes(owner)}
    assert status_writes("def f(a):\n    a.status = 'done'\n")
    assert status_writes("def f(qs):\n    qs.update(status='done')\n")
    assert not status_writes("def f():\n    Delivery.objects.filter().update(status='x')\n")


@pytest.mark.parametrize(
    ("to", "leaves"),
    [
        ("sending", {"draft"}),
        ("done", {"sending"}),
        ("cancelled", {"draft", "sending"}),
    ],
)
def test_each_status_is_reached_only_from_the_ones_before_it(db, to, leaves, business, staff):
    for start in Announcement.Status.values:
        row = Announcement.objects.create(
            business=business,
            body="x",
            audience="all",
            created_by=staff,
            form_token=uuid.uuid4(),
            created_at=timezone.now(),
            status=start,
        )
        assert actions._move(row.pk, to=to) == (start in leaves), (start, to)
