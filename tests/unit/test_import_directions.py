"""The dependency picture of ARCHITECTURE.md, enforced on the AST of every worker module.

    cli / capabilities / summary            composition root: may import anything
    ai bots holdings credits signals billing backtest console notify ops data capabilities
    fleet · candles · strategies (pure) · exchanges
    sealing · retry · inbox · http_transport · db · errors           shared tools

Rules (each import, also those inside functions):

1. A shared tool imports only shared tools.
2. ``strategies`` imports only itself and ``errors``, and no I/O library.
3. ``fleet`` imports only itself and shared tools: it knows no capability.
4. ``candles`` imports only itself, ``strategies`` and shared tools.
5. ``exchanges`` imports only itself, ``candles`` and shared tools (no bots, no fleet).
6. A capability imports another capability only by its package root (``worker.credits``
   and the names it exports), never a module inside it.
7. ``bots`` and ``backtest`` never import each other, not even by package root.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "worker"

ROOT = {"cli", "capabilities", "summary", "__main__"}
CAPABILITIES = {
    "ai",
    "bots",
    "holdings",
    "credits",
    "signals",
    "billing",
    "backtest",
    "console",
    "notify",
    "ops",
    "data",
}
TOOLS = {"sealing", "retry", "inbox", "http_transport", "db", "errors"}
ALLOWED: dict[str, set[str]] = {
    "strategies": {"strategies", "errors"},
    "fleet": {"fleet"} | TOOLS,
    "candles": {"candles", "strategies"} | TOOLS,
    "exchanges": {"exchanges", "candles"} | TOOLS,
}
IO_LIBRARIES = {"psycopg", "psycopg_pool", "ccxt", "httpx", "websockets", "supabase", "realtime"}
APART = {"bots": "backtest", "backtest": "bots"}


def _top(module: str) -> str:
    """``worker.bots.engine`` -> ``bots``; ``worker.retry`` -> ``retry``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_submodule(package: str, name: str) -> bool:
    base = WORKER / package
    return (base / f"{name}.py").exists() or (base / name / "__init__.py").exists()


def _imports(module: str, source: str) -> Iterator[tuple[int, str]]:
    """Every module a source imports, as dotted names (``from x import y`` gives ``x.y``
    when ``y`` is a module of a worker package, else ``x``)."""
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                parts = target.split(".")
                if target == "worker" or (
                    len(parts) == 2 and parts[0] == "worker" and _is_submodule(parts[1], alias.name)
                ):
                    yield node.lineno, f"{target}.{alias.name}"
                else:
                    yield node.lineno, target


def violations(module: str, source: str) -> list[str]:
    """What in ``source`` (the text of ``module``, e.g. ``worker.bots.engine``) breaks a rule."""
    own = _top(module) if module.count(".") else module.split(".")[-1]
    if own in ROOT:
        return []
    found: list[str] = []
    for line, target in _imports(module, source):
        where = f"{module}:{line} imports {target}"
        if target.split(".")[0] in IO_LIBRARIES and own == "strategies":
            found.append(f"{where}: strategies are pure computation")
            continue
        if not target.startswith("worker.") or _top(target) == own:
            continue
        other = _top(target)
        if own in TOOLS and other not in TOOLS:
            found.append(f"{where}: a shared tool knows no {other}")
        elif own in ALLOWED and other not in ALLOWED[own]:
            found.append(f"{where}: {own} may not depend on {other}")
        elif own in CAPABILITIES:
            if APART.get(own) == other:
                found.append(f"{where}: bots and backtest share code only through candles")
            elif other in ROOT:
                found.append(f"{where}: only the composition root imports {other}")
            elif other in CAPABILITIES and target.count(".") > 1:
                found.append(f"{where}: use worker.{other}'s public API, not its internals")
    return found


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(WORKER.rglob("*.py")):
        rel = path.relative_to(WORKER.parent).with_suffix("")
        yield ".".join(rel.parts), path


def test_every_worker_module_imports_in_the_direction_of_the_picture() -> None:
    found = [v for module, path in _modules() for v in violations(module, path.read_text())]
    assert found == []


def test_the_check_catches_each_kind_of_wrong_import() -> None:
    cases = {
        ("worker.bots.engine", "from worker.backtest.api import run_backtest"): "share code",
        ("worker.backtest.jobs", "from worker import bots"): "share code",
        ("worker.backtest.jobs", "from worker.credits import ledger"): "public API",
        ("worker.holdings.jobs", "from worker.bots.model import derived_id"): "public API",
        ("worker.bots.engine", "def f():\n    from worker.cli import main"): "composition root",
        ("worker.candles.market", "from worker.exchanges import Exchange"): "may not depend",
        ("worker.exchanges.paper", "from worker.fleet.registry import Registry"): "may not",
        ("worker.fleet.runtime", "import worker.bots"): "may not depend on bots",
        ("worker.strategies.base", "import psycopg"): "pure",
        ("worker.strategies.base", "from worker.candles import Candle"): "may not",
        ("worker.retry", "from worker.exchanges import Exchange"): "shared tool",
        ("worker.sealing.rotate", "from ..holdings import jobs"): "shared tool",
    }
    for (module, source), reason in cases.items():
        found = violations(module, source)
        assert len(found) == 1 and reason in found[0], (module, source, found)
    # What the picture allows.
    assert violations("worker.backtest.jobs", "from worker.credits import transfer_id") == []
    assert violations("worker.bots.runner", "from worker import credits") == []
    assert violations("worker.bots.runner", "from . import credit_gate") == []
    assert violations("worker.cli", "from worker.bots.demo import run") == []
