"""A fake exchange process (``python -m tests.fakes.serve``) seen from a test: its URL, its
state (orders, trades, balances) and its kill points."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.db import ROOT


class FakeExchangeProcess:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self._client = httpx.AsyncClient(base_url=url, timeout=10.0)

    async def state(self) -> dict[str, Any]:
        response = await self._client.get("/_fake/state")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def arm(self, kill_point: str, after: int = 0) -> None:
        """Hold back the answer to the next order matching ``kill_point`` (entry, exit, stop),
        after letting ``after`` such orders through."""
        body = {"name": kill_point, "after": after}
        (await self._client.post("/_fake/kill_point", json=body)).raise_for_status()

    async def release(self) -> None:
        (await self._client.post("/_fake/release")).raise_for_status()

    async def held(self) -> list[dict[str, Any]]:
        return list((await self.state())["held"])

    async def aclose(self) -> None:
        await self._client.aclose()


@contextlib.contextmanager
def fake_exchange(
    kind: str = "binance", *, log: Path | None = None, args: tuple[str, ...] = ()
) -> Iterator[FakeExchangeProcess]:
    """Start ``python -m tests.fakes.serve KIND`` on a free port; stopped on exit."""
    err = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", kind, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"the fake exchange did not start: {line!r}")
        yield FakeExchangeProcess(proc, line.split(" ", 1)[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if log is not None and hasattr(err, "close"):
            err.close()
