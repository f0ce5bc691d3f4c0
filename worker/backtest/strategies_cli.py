"""``tradefleet strategies``: every strategy with its parameters, defaults and ranges."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic.fields import FieldInfo
from rich.table import Table

from worker.backtest.cli import console
from worker.strategies.base import Strategy
from worker.strategies.registry import get_strategy, list_strategies


def _type_name(field: FieldInfo) -> str:
    ann = field.annotation
    if ann in (int, float, bool, str):
        return str(getattr(ann, "__name__", ann))
    text = str(ann).replace("typing.", "").replace("worker.strategies.rules.", "")
    if "float" in text and "None" in text and text.count("|") == 1:
        return "float or none"
    return "rules (JSON)"


def _bounds(field: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in field.metadata:  # annotated-types constraints (Ge, Gt, Le, Lt)
        for key in ("ge", "gt", "le", "lt"):
            value = getattr(m, key, None)
            if isinstance(value, int | float):
                out[key] = value
    return out


def _range_text(bounds: dict[str, float]) -> str:
    low = (
        f"{bounds['ge']:g} ≤ "
        if "ge" in bounds
        else f"{bounds['gt']:g} < "
        if "gt" in bounds
        else ""
    )
    high = (
        f" ≤ {bounds['le']:g}"
        if "le" in bounds
        else f" < {bounds['lt']:g}"
        if "lt" in bounds
        else ""
    )
    return f"{low}x{high}" if low or high else "-"


def describe(strategy: Strategy) -> dict[str, Any]:
    """A strategy's name, description and parameters (from its parameter model)."""
    params = []
    for name, field in strategy.params_model.model_fields.items():
        params.append(
            {
                "name": name,
                "type": _type_name(field),
                "default": field.get_default(call_default_factory=True),
                "range": _bounds(field),
                "description": field.description or "",
            }
        )
    doc = " ".join((type(strategy).__doc__ or "").replace("``", "").split())
    return {
        "name": strategy.name,
        "description": strategy.description,
        "rules": doc,
        "parameters": params,
    }


def strategies_command(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else list_strategies()
    found = [describe(get_strategy(n)) for n in names]
    if args.json:
        print(json.dumps(found))
        return 0
    out = console()
    for s in found:
        table = Table(
            title=f"[bold]{s['name']}[/] · {s['description']}",
            caption=s["rules"],
            title_justify="left",
            caption_justify="left",
        )
        table.add_column("parameter", no_wrap=True)
        table.add_column("type")
        table.add_column("default", justify="right")
        table.add_column("range")
        table.add_column("meaning")
        for p in s["parameters"]:
            default = "none" if p["default"] is None else str(p["default"])
            table.add_row(p["name"], p["type"], default, _range_text(p["range"]), p["description"])
        out.print(table)
        out.print()
    return 0


def add_commands(subparsers: Any) -> None:
    """Register ``strategies``."""
    cmd = subparsers.add_parser(
        "strategies",
        help="list the strategies with their parameters, defaults and ranges",
        description="List every strategy a bot or a backtest can run, with each parameter's "
        "type, default and allowed range. Pass parameters to backtest/optimize as JSON "
        "with --params.",
    )
    cmd.add_argument("name", nargs="?", choices=list_strategies(), help="show only this strategy")
    cmd.add_argument("--json", action="store_true", help="print JSON instead of tables")
    cmd.set_defaults(handler=strategies_command)
