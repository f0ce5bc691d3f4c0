"""Deliver notifications to the channels their users opted into; one failing channel or
notification never blocks the others."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .channels import Channel, Delivery


@dataclass(frozen=True)
class Outbound:
    """One notification and where its user wants it."""

    id: uuid.UUID
    title: str
    body: str | None
    addresses: Mapping[str, str]  # channel name -> chat id / webhook URL
    done: Mapping[str, Any] = field(default_factory=dict)  # notifications.channels so far

    def text(self) -> str:
        return f"{self.title}\n{self.body}" if self.body else self.title


def _finished(state: Any) -> bool:
    return isinstance(state, dict) and state.get("status") in ("sent", "failed")


async def deliver(
    notes: Sequence[Outbound], channels: Mapping[str, Channel], *, concurrency: int = 20
) -> dict[uuid.UUID, dict[str, Any]]:
    """Send every pending (notification, channel) pair; returns, per notification, the
    channel states to merge into ``notifications.channels``."""
    gate = asyncio.Semaphore(concurrency)
    patches: dict[uuid.UUID, dict[str, Any]] = {}

    async def one(note: Outbound, name: str, address: str) -> None:
        async with gate:
            try:
                result = await channels[name].send(address, note.text())
            except Exception as e:  # a channel's bug must not stop the other channels
                result = Delivery("retry", 1, f"{type(e).__name__}: {e}")
        previous = note.done.get(name)
        attempts = (
            previous.get("attempts", 0) if isinstance(previous, dict) else 0
        ) + result.attempts
        state: dict[str, Any] = {
            "status": result.status,
            "attempts": attempts,
            "at": datetime.now(UTC).isoformat(),
        }
        if result.error:
            state["error"] = result.error
        patches.setdefault(note.id, {})[name] = state

    await asyncio.gather(
        *(
            one(note, name, address)
            for note in notes
            for name, address in note.addresses.items()
            if name in channels and not _finished(note.done.get(name))
        )
    )
    return patches
