"""The outside programs the tests drive, found where the machine keeps them: PostgreSQL's
from ``PGBIN`` (``scripts/lib.sh`` exports the folder it uses) or else from ``PATH``, the
browser and its driver from ``PATH``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def pg_program(name: str) -> str:
    """The path of PostgreSQL's program ``name`` (``pg_ctl``, ``pg_dump``, ``initdb``…)."""
    pgbin = os.environ.get("PGBIN")
    if pgbin:
        return str(Path(pgbin) / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not on PATH: set PGBIN to PostgreSQL 15's bin folder "
            "(scripts/test and scripts/chaos set it)"
        )
    return found


def on_path(name: str) -> Path | None:
    """The program ``name`` from ``PATH``, or None when the machine does not have it."""
    found = shutil.which(name)
    return None if found is None else Path(found)
