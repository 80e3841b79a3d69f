"""No module of ours imports another that imports it back, directly or through others; and
the apps import one way: `messaging` <- `notifications`, `crm_events`.

A static check over the apps' source: every `import` counts, at module level or inside a
function (a function-level import only hides a cycle, it does not remove it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["portal", "messaging", "notifications", "crm_events"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _our_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[_module_name(path)] = path
    return modules


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module; `from module import name`
            # imports the module itself.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            # The longest name of ours the import reaches.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_module_imports_one_that_imports_it_back():
    modules = _our_modules()
    known = set(modules)
    graph = {name: _imports(path, name, known) for name, path in modules.items()}
    # A package's __init__ is imported by every module inside it; an edge from a package to
    # its own submodules is how Python loads it, not a cycle of ours.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    cycles = _cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# The layers (docs/architecture.md): messaging, the thread, is the base; notifications and
# crm_events build on it and not on each other both ways. portal stands outside the rule: it
# is the project's shell (settings, urls, the demo), which imports every app, and holds the
# base records (Business, Customer) every app imports.
LAYERS = {"messaging": 0, "notifications": 1, "crm_events": 1}


def _app_of(module: str) -> str:
    return module.partition(".")[0]


def _app_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which apps each layered app's modules import (itself and portal aside)."""
    apps: dict[str, set[str]] = {app: set() for app in LAYERS}
    for module, targets in graph.items():
        app = _app_of(module)
        if app in LAYERS:
            apps[app] |= {_app_of(t) for t in targets if _app_of(t) in LAYERS} - {app}
    return apps


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a module from a higher layer (`messaging.x imports notifications.y`),
    and each pair of apps that import each other both ways."""
    found = [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _app_of(module) in LAYERS
        and _app_of(target) in LAYERS
        and LAYERS[_app_of(target)] > LAYERS[_app_of(module)]
    ]
    apps = _app_graph(graph)
    found += [
        f"{a} and {b} import each other"
        for a in sorted(apps)
        for b in sorted(apps[a])
        if a < b and a in apps[b]
    ]
    return found


def _our_graph() -> dict[str, set[str]]:
    modules = _our_modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def test_apps_import_one_way_messaging_imports_no_app_above_it():
    violations = _layer_violations(_our_graph())
    assert violations == [], "imports against the layers:\n" + "\n".join(violations)


def test_the_layer_check_finds_an_upward_import_and_two_apps_importing_each_other():
    graph = _our_graph()
    graph["messaging.actions"] = graph["messaging.actions"] | {"notifications.outbound.planning"}
    assert _layer_violations(graph) == [
        "messaging.actions imports notifications.outbound.planning",
        "messaging and notifications import each other",
    ]
    graph = _our_graph()
    graph["crm_events.automations"] = graph["crm_events.automations"] | {"notifications.queries"}
    graph["notifications.tasks"] = graph["notifications.tasks"] | {"crm_events.models"}
    assert _layer_violations(graph) == ["crm_events and notifications import each other"]


def test_the_layer_check_reads_a_planted_import_from_source(tmp_path):
    # The same check, through the parser: a function-level import counts.
    path = tmp_path / "planted.py"
    path.write_text("def f():\n    from notifications.queries import deliveries_prefetch\n")
    known = set(_our_modules())
    graph = {"messaging.planted": _imports(path, "messaging.planted", known)}
    assert _layer_violations(graph) == ["messaging.planted imports notifications.queries"]


def test_sending_never_imports_intake():
    # notifications/inbound/ may use notifications/outbound/ (a bounce fails a delivery);
    # the reverse would tie the outbox to the webhooks. What both need is outside both.
    graph = _our_graph()
    upward = {
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith("notifications.outbound")
        for target in targets
        if target.startswith("notifications.inbound")
    }
    assert upward == set()


def test_the_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
