"""Imports point one way: storage <- encoding <- engine <- api/mail/runtime/catalog <- testing
<- ui <- cli."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "durable"

# What each layer may import from durable, besides itself and the leaves _errors,
# _asyncio_private (the door to asyncio's private API, which storage uses too) and _gc_pause
# (pausing the cyclic GC over a journal read, in storage and the engine).
LEAVES = {"_errors", "_asyncio_private", "_gc_pause", "_version"}
ALLOWED = {
    "_errors": set(),
    "_version": set(),
    "_asyncio_private": set(),
    "_gc_pause": set(),
    "_storage": set(),
    "_encoding": {"_storage"},
    "_durations": set(),
    "_outage": set(),
    "_engine": {"_storage", "_encoding", "_durations"},
    "_queues": {"_durations"},
    "_limits": {"_queues", "_storage"},
    "_definitions": {"_engine", "_durations", "_limits"},
    "_api": {"_engine", "_durations", "_definitions"},
    "_saga": {"_engine", "_definitions"},
    "_reading": {"_engine", "_storage"},
    "_streams": {"_encoding", "_engine", "_storage"},
    "_sleepers": {"_engine", "_encoding", "_storage"},
    "_mail": {"_engine", "_encoding", "_storage", "_outage", "_reading", "_sleepers"},
    "_runtime_parts": {"_definitions"},
    "_serving": {
        "_definitions",
        "_engine",
        "_encoding",
        "_storage",
        "_durations",
        "_outage",
        "_runtime_parts",
    },
    "_children": {"_definitions", "_engine", "_encoding", "_storage", "_mail"},
    "_deadline": {"_engine", "_mail"},
    "_seams": {"_engine", "_storage"},
    "_queue_reading": {"_encoding", "_engine", "_queues", "_storage"},
    "_queue_state": {"_engine", "_queues", "_storage"},
    "_queue_requests": {"_definitions", "_encoding", "_engine", "_queues"},
    "_queue_enqueue": {
        "_definitions",
        "_encoding",
        "_engine",
        "_queue_requests",
        "_queue_state",
        "_queues",
        "_storage",
    },
    "_queue_gate": {"_engine", "_queue_state", "_storage"},
    "_queue_dispatch": {
        "_definitions",
        "_encoding",
        "_engine",
        "_queue_gate",
        "_queue_reading",
        "_queue_requests",
        "_queue_state",
        "_storage",
    },
    "_queue_postgres": {
        "_definitions",
        "_encoding",
        "_engine",
        "_limits",
        "_queue_dispatch",
        "_queue_reading",
        "_queue_requests",
        "_queue_state",
        "_queues",
        "_storage",
    },
    "_queue_service": {
        "_definitions",
        "_queue_postgres",
        "_queue_requests",
        "_engine",
        "_queue_dispatch",
        "_queue_enqueue",
        "_queue_gate",
        "_queue_reading",
        "_queue_state",
        "_queues",
        "_storage",
    },
    "_schedule_spec": {"_durations"},
    "_schedule_run": {"_api", "_definitions", "_schedule_spec"},
    "_default_runtime": {
        "_definitions",
        "_durations",
        "_handles",
        "_queue_service",
        "_queues",
        "_runtime",
    },
    "_schedules": {
        "_default_runtime",
        "_handles",
        "_definitions",
        "_durations",
        "_engine",
        "_reading",
        "_runtime",
        "_schedule_run",
        "_schedule_spec",
    },
    "_operations": {
        "_definitions",
        "_encoding",
        "_engine",
        "_reading",
        "_runtime_parts",
        "_storage",
    },
    "_bulk": {"_api", "_definitions", "_engine", "_query", "_storage"},
    "_querying": {
        "_bulk",
        "_catalog",
        "_definitions",
        "_engine",
        "_query",
        "_runtime_parts",
        "_storage",
    },
    "_excerpts": set(),
    "_telemetry": {"_otel"},
    "_otel": {"_engine"},
    "_log_context": {"_engine"},
    "_start_checks": {"_definitions", "_encoding", "_engine"},
    "_journal_holding": {"_engine", "_storage"},
    "_id_runs": {"_deadline", "_engine", "_journal_holding", "_sleepers", "_storage"},
    "_workflow_tasks": {
        "_id_runs",
        "_journal_holding",
        "_start_checks",
        "_children",
        "_deadline",
        "_definitions",
        "_encoding",
        "_engine",
        "_limits",
        "_mail",
        "_outage",
        "_queue_service",
        "_queues",
        "_runtime_parts",
        "_seams",
        "_sleepers",
        "_storage",
        "_streams",
        "_otel",
    },
    "_handles": {"_engine"},
    "_recovery": {
        "_definitions",
        "_encoding",
        "_engine",
        "_queue_postgres",
        "_queue_service",
        "_runtime_parts",
        "_storage",
    },
    "_runtime": {
        "_workflow_tasks",
        "_handles",
        "_recovery",
        "_bulk",
        "_query",
        "_querying",
        "_runtime_parts",
        "_children",
        "_operations",
        "_deadline",
        "_definitions",
        "_engine",
        "_encoding",
        "_storage",
        "_durations",
        "_limits",
        "_mail",
        "_outage",
        "_queue_service",
        "_queues",
        "_reading",
        "_seams",
        "_serving",
        "_sleepers",
        "_streams",
        "_telemetry",
    },
    "testing": {
        "_handles",
        "_children",
        "_definitions",
        "_engine",
        "_encoding",
        "_storage",
        "_durations",
        "_queues",
        "_runtime",
        "_seams",
        "_telemetry",
    },
    "web": {"_runtime", "_streams"},
    "_json_ready": {"_engine"},
    "_query": {"_durations", "_engine"},
    "_catalog_index": {"_encoding", "_engine", "_storage"},
    "_catalog_postgres": {"_catalog_index", "_encoding", "_engine", "_query", "_storage"},
    "_catalog": {
        "_catalog_index",
        "_catalog_postgres",
        "_engine",
        "_encoding",
        "_json_ready",
        "_query",
        "_queue_reading",
        "_storage",
        "_streams",
    },
    "_ui": {
        "_bulk",
        "_definitions",
        "_errors",
        "_query",
        "_catalog",
        "_streams",
        "_engine",
        "_excerpts",
        "_json_ready",
        "_runtime",
        "_schedule_spec",
        "_schedules",
        "_storage",
    },
    "_cli": {
        "_bulk",
        "_errors",
        "_query",
        "_querying",
        "_runtime_parts",
        "_definitions",
        "_catalog",
        "_engine",
        "_excerpts",
        "_json_ready",
        "_queue_reading",
        "_runtime",
        "_schedules",
        "_storage",
        "testing",
        "_ui",
    },
}


def durable_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    relative_to = path.relative_to(PACKAGE).parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(relative_to[: len(relative_to) - node.level])
                module = [*base, *(node.module or "").split(".")] if node.module else base
                top = module[0] if module else ""
            elif node.module and node.module.startswith("durable."):
                top = node.module.split(".")[1]
            else:
                continue
            found.add(top.removesuffix(".py"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("durable."):
                    found.add(alias.name.split(".")[1])
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_lower_layers_never_import_higher_ones() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(path)
        if layer not in ALLOWED or layer == "__init__":
            continue
        leaves = set() if layer in LEAVES else LEAVES  # (a leaf imports nothing from durable)
        imported = durable_imports(path) - {layer, *leaves, ""}
        assert imported <= ALLOWED[layer], f"{path.relative_to(PACKAGE)} imports {imported}"


def test_storage_knows_nothing_of_msgpack() -> None:
    for path in (PACKAGE / "_storage").rglob("*.py"):
        assert "import msgpack" not in path.read_text(), path


def engine_imports(path: Path) -> set[str]:
    """The engine modules `path` (an engine module) imports, under TYPE_CHECKING too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1 and node.module:  # from ._x import ...
            found.add(node.module)
        elif node.level == 1:  # from . import _x
            found.update(alias.name for alias in node.names)
        elif node.module and node.module.startswith("durable._engine."):
            found.add(node.module.split(".")[2])
    return found


def test_the_engine_modules_import_each_other_without_a_cycle() -> None:
    engine = PACKAGE / "_engine"
    graph = {path.stem: engine_imports(path) for path in engine.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, f"import cycle: {' -> '.join((*trail, module))}"
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, (*trail, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_engine_ports_are_a_leaf() -> None:
    """What the engine needs from its host: protocols that import nothing from durable."""
    assert durable_imports(PACKAGE / "_engine" / "_ports.py") == set()
