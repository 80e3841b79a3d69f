"""Invariant 2: every entry is created by a function in messaging/actions.py.

A static check over the project's source: no other module may construct, create, save or
bulk-create an Entry or a ReadMark, or write a Thread's counters."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["portal", "messaging", "notifications", "crm_events"]
WRITER = ROOT / "messaging" / "actions.py"
WRITE_METHODS = {"create", "bulk_create", "get_or_create", "update_or_create", "update"}


def _source_files():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def _entry_writes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        # Entry(...) or Entry.objects.create(...) / Thread.objects...update(...)
        if isinstance(func, ast.Name) and func.id in ("Entry", "ReadMark"):
            lines.append(node.lineno)
        if isinstance(func, ast.Attribute) and func.attr in WRITE_METHODS:
            text = ast.unparse(func.value)
            if text.startswith(("Entry.objects", "Thread.objects", "ReadMark.objects")):
                lines.append(node.lineno)
    return lines


def test_only_messaging_actions_writes_thread_entries():
    offenders = {}
    for path in _source_files():
        if path == WRITER:
            continue
        lines = _entry_writes(ast.parse(path.read_text(), filename=str(path)))
        if lines:
            offenders[str(path.relative_to(ROOT))] = lines
    assert offenders == {}, f"Entries written outside messaging/actions.py: {offenders}"


def test_the_check_sees_writes_in_the_writer_itself():
    # Guards the check: if it found nothing in actions.py it would be checking nothing.
    assert _entry_writes(ast.parse(WRITER.read_text()))
