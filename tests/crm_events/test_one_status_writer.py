"""One owner for every CRM status: only the transition functions in crm_events.actions write
the status of an invoice, estimate, contract or appointment (issue 17).

A static check over the product's source, like tests/test_one_writer.py for thread entries.
It finds every way Django code writes a field: assigning it (`x.status = ...`, `setattr`),
saving it by name (`update_fields`, `bulk_update`), and passing it to a write (`create`,
`update`, `get_or_create`, `update_or_create`, a model's constructor, `defaults=`)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["portal", "messaging", "notifications", "crm_events"]
CRM_MODELS = {"Invoice", "Estimate", "Contract", "Appointment"}
# The owners: (module, function).
OWNERS = {
    ("crm_events/actions/invoices.py", "transition_invoice"),
    ("crm_events/actions/estimates.py", "transition_estimate"),
    ("crm_events/actions/contracts.py", "transition_contract"),
    ("crm_events/actions/appointments.py", "transition_appointment"),
}
WRITES = {"create", "update", "get_or_create", "update_or_create", "bulk_create"}


def _names_status(node: ast.AST) -> bool:
    """A literal list/tuple/set of field names that includes "status"."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return any(isinstance(e, ast.Constant) and e.value == "status" for e in node.elts)
    return False


class _Finder(ast.NodeVisitor):
    """Status writes, each with the function it is in. `crm_file` widens the search to
    writes whose model cannot be seen (`x.status = ...`, `qs.update(status=...)`): in files
    that deal with CRM records, any status is taken for a CRM one."""

    def __init__(self, crm_file: bool) -> None:
        self.crm_file = crm_file
        self.stack: list[str] = []
        self.classes: list[str] = []
        self.found: list[tuple[int, str]] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def _add(self, node: ast.AST) -> None:
        self.found.append((node.lineno, self.stack[-1] if self.stack else "<module>"))

    def visit_FunctionDef(self, node) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Attribute) and target.attr == "status" and self.crm_file:
            # `self.status` is a CRM status only in a CRM model's own methods (an exception
            # or a form has a status of its own).
            own = ast.unparse(target.value) == "self"
            if not own or (self.classes and self.classes[-1] in CRM_MODELS):
                self._add(node)
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._target(element, node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node) -> None:
        self._target(node.target, node)
        self.generic_visit(node)

    visit_AnnAssign = visit_AugAssign

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        root = receiver.split(".")[0]
        crm_receiver = root in CRM_MODELS
        # In a CRM file a write through a variable may be a CRM one; one through another
        # model by name (Project.objects...) is not.
        unknown_receiver = not root[:1].isupper()
        maybe_crm = crm_receiver or (self.crm_file and unknown_receiver)
        if name in CRM_MODELS and "status" in keywords:
            self._add(node)  # Invoice(status=...)
        elif name in WRITES and maybe_crm:
            defaults = keywords.get("defaults")
            in_defaults = isinstance(defaults, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "status" for k in defaults.keys
            )
            if "status" in keywords or in_defaults:
                self._add(node)
        elif name == "setattr" and self.crm_file and len(node.args) >= 2:
            if isinstance(node.args[1], ast.Constant) and node.args[1].value == "status":
                self._add(node)
        elif name == "save" and self.crm_file and _names_status(keywords.get("update_fields")):
            self._add(node)
        elif name == "bulk_update" and maybe_crm:
            fields = node.args[1] if len(node.args) > 1 else keywords.get("fields")
            if fields is not None and _names_status(fields):
                self._add(node)
        self.generic_visit(node)


def status_writes(source: str, *, crm_file: bool) -> list[tuple[int, str]]:
    finder = _Finder(crm_file)
    finder.visit(ast.parse(source))
    return finder.found


# The outbound webhooks' rows (no CRM record among them) have statuses of their own, with their
# own owner, checked by tests/crm_events/test_outbound_owners.py.
NOT_CRM_RECORDS = {"crm_events/outbound/models.py"}


def _is_crm_file(relative: str, source: str) -> bool:
    if relative in NOT_CRM_RECORDS:
        return False
    return relative.startswith("crm_events/") or "crm_events" in source


def _source_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_only_the_transition_functions_write_crm_statuses():
    offenders = {}
    for path in _source_files():
        relative = str(path.relative_to(ROOT))
        source = path.read_text()
        writes = [
            (line, function)
            for line, function in status_writes(source, crm_file=_is_crm_file(relative, source))
            if (relative, function) not in OWNERS
        ]
        if writes:
            offenders[relative] = writes
    assert offenders == {}, f"CRM statuses written outside the transition functions: {offenders}"


def test_each_transition_function_is_seen_writing_its_status():
    # Guards the check: if it found nothing in the owners it would be checking nothing.
    for module, function in OWNERS:
        writes = status_writes((ROOT / module).read_text(), crm_file=True)
        assert function in {f for _, f in writes}, module


PLANTED = [
    "invoice.status = Invoice.Status.PAID",
    "invoice.status, invoice.paid_at = 'paid', now",
    "setattr(invoice, 'status', 'paid')",
    "invoice.save(update_fields=['status'])",
    "Invoice.objects.filter(pk=1).update(status='paid')",
    "qs.update(status='void')",
    "Appointment.objects.create(customer=c, status='confirmed')",
    "Estimate(customer=c, status='approved').save()",
    "Contract.objects.update_or_create(number='1', defaults={'status': 'signed'})",
    "Invoice.objects.bulk_update(invoices, ['status'])",
]


@pytest.mark.parametrize("line", PLANTED)
def test_the_check_finds_a_planted_status_write(line):
    source = textwrap.dedent(
        f"""
        def mark_it(invoice, qs, c, now, invoices):
            {line}
        """
    )
    assert status_writes(source, crm_file=True) == [(3, "mark_it")]


def test_the_check_leaves_reads_and_other_apps_statuses_alone():
    source = textwrap.dedent(
        """
        def reads(invoice, delivery):
            Invoice.objects.filter(status="sent").exclude(status="draft")
            if invoice.status == "paid":
                return invoice.get_status_display()
            Delivery.objects.filter(pk=1).update(status="sent")
            Project.objects.update_or_create(code="P", defaults={"status": "active"})

        class Refused(Exception):
            def __init__(self, status):
                self.status = status
        """
    )
    assert status_writes(source, crm_file=False) == []
    assert status_writes(source, crm_file=True) == []


def test_the_check_finds_a_status_written_in_a_models_own_method():
    source = textwrap.dedent(
        """
        class Invoice:
            def mark_paid(self):
                self.status = "paid"
        """
    )
    assert status_writes(source, crm_file=True) == [(4, "mark_paid")]


# -- issue 21's states: each has one writer too ------------------------------------------------

# A field (assigned, or saved by name) or a model's rows (created), and the one function that
# writes it.
FIELD_OWNERS = {
    "amount_paid": {("crm_events/actions/invoices.py", "record_payment")},
    "crm_id": {("portal/actions.py", "link_crm_id")},
    # Estimate.version, and CalendarFeed.version (the field names meet; each has its writer).
    "version": {
        ("crm_events/actions/estimates.py", "send_estimate"),
        ("crm_events/actions/calendar_feeds.py", "reset_calendar_feed"),
    },
}
ROW_OWNERS = {
    "Payment": {("crm_events/actions/invoices.py", "record_payment")},
    "EstimateDecision": {("crm_events/actions/estimates.py", "decide_estimate")},
    "EstimateVersion": {("crm_events/actions/estimates.py", "_snapshot")},
}


class _StateFinder(ast.NodeVisitor):
    """Writes of FIELD_OWNERS' fields and ROW_OWNERS' rows, each with its function."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.found: list[tuple[str, str]] = []

    def visit_FunctionDef(self, node) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _add(self, state: str) -> None:
        self.found.append((state, self.stack[-1] if self.stack else "<module>"))

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            targets = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
            for element in targets:
                if isinstance(element, ast.Attribute) and element.attr in FIELD_OWNERS:
                    self._add(element.attr)
        self.generic_visit(node)

    def visit_AugAssign(self, node) -> None:
        if isinstance(node.target, ast.Attribute) and node.target.attr in FIELD_OWNERS:
            self._add(node.target.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        root = receiver.split(".")[0]
        if name in WRITES and root in ROW_OWNERS:
            self._add(root)
        for keyword in node.keywords:
            if keyword.arg in FIELD_OWNERS and name in {"update", "save"}:
                self._add(keyword.arg)
            if keyword.arg == "update_fields" and isinstance(keyword.value, ast.List | ast.Tuple):
                for element in keyword.value.elts:
                    if isinstance(element, ast.Constant) and element.value in FIELD_OWNERS:
                        self._add(element.value)
        self.generic_visit(node)


def _state_writes(source: str) -> list[tuple[str, str]]:
    finder = _StateFinder()
    finder.visit(ast.parse(source))
    return finder.found


def test_payments_decisions_versions_and_crm_ids_have_one_writer_each():
    owners = FIELD_OWNERS | ROW_OWNERS
    offenders, seen = [], set()
    for path in _source_files():
        relative = str(path.relative_to(ROOT))
        for state, function in _state_writes(path.read_text()):
            if (relative, function) in owners[state]:
                seen.add(state)
            else:
                offenders.append((relative, function, state))
    assert offenders == []
    assert seen == set(owners)  # the check sees each owner write what it owns


def test_the_state_check_finds_a_planted_write():
    source = textwrap.dedent(
        """
        def sneak(invoice, customer):
            invoice.amount_paid = 0
            customer.save(update_fields=["crm_id"])
            Payment.objects.create(invoice=invoice, amount=1)
        """
    )
    assert _state_writes(source) == [
        ("amount_paid", "sneak"),
        ("crm_id", "sneak"),
        ("Payment", "sneak"),
    ]
