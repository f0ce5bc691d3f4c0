"""Mutation testing of the security suite: open holes on purpose, check each one is caught.

Each mutant is a few statements that open one hole in a copy of the migrated database.
The security suite (Supabase's advisor lints, the identity matrix, the abuse files and the
admin actions' file under ``supabase/tests/database``) runs against every copy; a mutant no
part of it notices survives, and the command fails naming it. Run it with ``scripts/security-mutants``.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.integration.test_advisor import unexpected_findings
from tests.security.mutants_catalogue import MUTANTS, Mutant
from tests.support import db as support

PGTAP = support.ROOT / "supabase" / "tests" / "database"

# The cluster's address does not change during a run; asking scripts/db once is enough.
admin_url = functools.cache(support.admin_url)


@dataclass
class Outcome:
    mutant: Mutant
    caught: list[tuple[str, str]]
    seconds: float
    error: str = ""


def security_files() -> list[Path]:
    """The pgTAP part of the security suite, quickest first; helpers excluded (the copy has them)."""
    grants = sorted(PGTAP.glob("rls_identity_grants*.test.sql"))
    others = (
        sorted(PGTAP.glob("rls_identity_*.test.sql"))
        + sorted(PGTAP.glob("abuse_*.test.sql"))
        + [
            PGTAP / "admin.test.sql",
            PGTAP / "organisations.test.sql",
            PGTAP / "organisations_handover.test.sql",
        ]
    )
    return grants + [p for p in others if p not in grants]


def helper_files() -> list[Path]:
    return sorted(PGTAP.glob("000-*.test.sql"))


def _psql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PGOPTIONS": "--client-min-messages=warning"},
    )


def run_pgtap(url: str, path: Path) -> str | None:
    """None when the file passes, else the first failure pg_prove reports."""
    db = url.rsplit("/", 1)[1]
    port = url.split(":")[-1].split("/")[0]
    proc = subprocess.run(
        ["pg_prove", "-v", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", db, str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    lines = (proc.stdout + proc.stderr).splitlines()
    failures = [line for line in lines if line.startswith("not ok") and "# TODO" not in line]
    errors = [line for line in lines if "ERROR:" in line]
    return (failures or errors or lines[-3:] or ["pg_prove failed"])[0]


def check(url: str, every_part: bool = False) -> list[tuple[str, str]]:
    """Run the security suite, cheapest part first: (part, why) for each part that failed.

    Stops at the first failing part unless ``every_part``.
    """
    caught: list[tuple[str, str]] = []
    findings = unexpected_findings(url, skipped="tests")
    if findings:
        caught.append(
            ("advisor", "; ".join(f"{lint}: {found[0]}" for lint, found in findings.items()))
        )
        if not every_part:
            return caught
    for path in security_files():
        failure = run_pgtap(url, path)
        if failure is not None:
            caught.append((path.name, failure))
            if not every_part:
                return caught
    return caught


def _copy(template: str, name: str) -> str:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return admin_url(name)


def _drop(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def build_template(run: str) -> str:
    """The migrated template plus the pgTAP helpers, once per run."""
    name = f"tf_mutants_{run}"
    url = _copy(support.ensure_template(), name)
    for path in helper_files():
        proc = _psql(url, "-o", "/dev/null", "-f", str(path))
        if proc.returncode != 0:
            raise RuntimeError(f"{path.name} did not install: {proc.stderr.strip()}")
    return name


def try_mutant(template: str, run: str, index: int, mutant: Mutant, every_part: bool) -> Outcome:
    started = time.monotonic()
    name = f"tf_mutant_{run}_{index}"
    url = _copy(template, name)
    try:
        proc = _psql(url, "-c", mutant.sql)
        if proc.returncode != 0:
            # A mutant that cannot be applied proves nothing: report it as not caught.
            return Outcome(mutant, [], 0.0, f"did not apply: {proc.stderr.strip()}")
        return Outcome(mutant, check(url, every_part), time.monotonic() - started)
    finally:
        _drop(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="security-mutants", description=__doc__)
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants checked at once")
    parser.add_argument("-k", "--kind", help="only mutants whose kind or name contains this")
    parser.add_argument(
        "--every-part", action="store_true", help="run every part of the suite on each mutant"
    )
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.kind or args.kind in m.kind or args.kind in m.name]

    started = time.monotonic()
    support.ensure_platform()
    run = uuid.uuid4().hex[:8]
    template = build_template(run)
    try:
        baseline = f"tf_mutant_{run}_baseline"
        try:
            failing = check(_copy(template, baseline), every_part=True)
        finally:
            _drop(baseline)
        if failing:
            print(f"security-mutants: the suite fails without any mutant: {failing}")
            return 2
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(
                    lambda im: try_mutant(template, run, im[0], im[1], args.every_part),
                    enumerate(mutants),
                )
            )
    finally:
        _drop(template)

    for o in outcomes:
        label = f"{o.mutant.kind}: {o.mutant.name}"
        if o.caught:
            print(f"caught    {label} ({o.seconds:.1f}s)")
            for part, why in o.caught:
                print(f"            by {part}: {why}")
        else:
            print(f"SURVIVED  {label} {o.error}".rstrip())
    caught = sum(1 for o in outcomes if o.caught)
    kinds = len({m.kind for m in mutants})
    print(f"security-mutants: {kinds} kinds, {time.monotonic() - started:.0f}s")
    print(
        f"security-mutants: mutants={len(outcomes)} caught={caught} survived={len(outcomes) - caught}"
    )
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
