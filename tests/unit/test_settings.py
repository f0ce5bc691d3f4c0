"""Configuration: only settings modules read the environment, every setting is documented
in ``.env.example``, and a worker without a database refuses to start."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import worker
from tests.support.db import ROOT

WORKER = ROOT / "worker"
ENV_EXAMPLE = ROOT / ".env.example"


def reads_environment(source: str) -> bool:
    """Whether Python ``source`` touches ``os.environ`` or ``os.getenv`` (however imported)."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "getenv", "environb", "getenvb")
        ):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "getenv", "environb", "getenvb") for a in node.names):
                return True
    return False


def test_the_scan_finds_every_way_of_reading_the_environment() -> None:
    assert reads_environment("import os\nx = os.environ['A']")
    assert reads_environment("import os\nx = os.getenv('A')")
    assert reads_environment("from os import environ\nx = environ.get('A')")
    assert not reads_environment("'''os.environ in a docstring'''\nx = 1")


def test_only_settings_modules_read_the_environment() -> None:
    readers = {
        path.relative_to(ROOT).as_posix()
        for path in WORKER.rglob("*.py")
        if reads_environment(path.read_text())
    }
    offenders = {p for p in readers if Path(p).name != "settings.py"}
    assert offenders == set(), "read settings through a settings class instead"


def settings_classes() -> list[type[BaseSettings]]:
    """Every ``BaseSettings`` subclass defined under ``worker/`` (and the fleet's test kinds)."""
    modules = [m.name for m in pkgutil.walk_packages(worker.__path__, "worker.")]
    found: dict[str, type[BaseSettings]] = {}
    for name in [*modules, "tests.support.fleet_kinds"]:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return list(found.values())


def env_names(cls: type[BaseSettings]) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix") or "")
    return [
        (field.alias or f"{prefix}{name}").upper()
        for name, field in cls.model_fields.items()
        # A nested settings object (e.g. the bots' sealing keys) is read by its own class.
        if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings))
    ]


SETTING = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def documented() -> dict[str, bool]:
    """Each setting in ``.env.example`` -> whether a comment line heads its group."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    out: dict[str, bool] = {}
    for i, line in enumerate(lines):
        m = SETTING.match(line)
        if not m:
            continue
        j = i - 1
        while j >= 0 and SETTING.match(lines[j]):
            j -= 1
        out[m.group(1)] = j >= 0 and lines[j].startswith("#") and lines[j].strip("#- ") != ""
    return out


def test_every_setting_of_every_settings_class_is_in_env_example_with_a_comment() -> None:
    classes = settings_classes()
    assert {c.__name__ for c in classes} >= {"FleetSettings", "BillingSettings"}
    docs = documented()
    names = {name for cls in classes for name in env_names(cls)}
    assert "DATABASE_URL" in names and "WORKER_EXTRA_CAPABILITIES" in names
    assert sorted(n for n in names if n not in docs) == [], "missing from .env.example"
    assert sorted(n for n in names if not docs[n]) == [], "no comment line describes these"


FUNCTIONS = ROOT / "supabase" / "functions"
FUNCTION_ENV = re.compile(r'Deno\.env\.get\("([A-Z0-9_]+)"\)|secretName: "([A-Z0-9_]+)"')


def test_every_secret_an_edge_function_reads_is_in_its_section_of_env_example() -> None:
    *_, section = ENV_EXAMPLE.read_text().split("# " + "=" * 85 + "\n# Edge Functions")
    read = {
        a or b
        for path in FUNCTIONS.rglob("*.ts")
        if not path.name.endswith("_test.ts")
        for a, b in FUNCTION_ENV.findall(path.read_text())
    }
    assert {"SUPABASE_URL", "STRIPE_WEBHOOK_SECRET", "TRADEFLEET_MASTER_KEYS"} <= read
    assert sorted(n for n in read if not re.search(rf"^#? ?{n}=", section, re.M)) == []


@pytest.mark.parametrize("command", [["worker"], ["summary"]])
def test_a_command_without_database_url_prints_one_line_and_exits_non_zero(
    command: list[str], tmp_path: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", *command],
        cwd=tmp_path,  # no .env here
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"tradefleet {command[0]}: DATABASE_URL is not set (see .env.example)"
    ]
