"""Outbound Telegram and Discord delivery against respx fakes of their HTTP APIs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from worker.notify import Outbound, deliver
from worker.notify.channels import DiscordChannel, TelegramChannel

TOKEN = "123:abc"
SEND = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
HOOK = "https://discord.com/api/webhooks/42/secret-token_1"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def note(**addresses: str) -> Outbound:
    return Outbound(uuid.uuid4(), "New signal: Alpha LONG BTC/USDT", "Entry 100", addresses)


@respx.mock
async def test_both_channels_receive_the_message(http: httpx.AsyncClient) -> None:
    tg = respx.post(SEND).mock(return_value=httpx.Response(200, json={"ok": True, "result": {}}))
    dc = respx.post(HOOK).mock(return_value=httpx.Response(204))
    sleep = Sleeps()
    n = note(telegram="777", discord=HOOK)
    patches = await deliver(
        [n],
        {
            "telegram": TelegramChannel(http, TOKEN, sleep=sleep),
            "discord": DiscordChannel(http, sleep=sleep),
        },
    )
    assert {k: v["status"] for k, v in patches[n.id].items()} == {
        "telegram": "sent",
        "discord": "sent",
    }
    body = tg.calls.last.request.read().decode()
    assert '"chat_id":"777"' in body and "New signal: Alpha LONG BTC/USDT\\nEntry 100" in body
    assert b'"allowed_mentions":{"parse":[]}' in dc.calls.last.request.read()
    assert sleep.calls == []


@respx.mock
async def test_a_rate_limit_is_waited_out_as_told(http: httpx.AsyncClient) -> None:
    respx.post(SEND).mock(
        side_effect=[
            httpx.Response(
                429, json={"ok": False, "error_code": 429, "parameters": {"retry_after": 3}}
            ),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    sleep = Sleeps()
    n = note(telegram="777")
    patches = await deliver([n], {"telegram": TelegramChannel(http, TOKEN, sleep=sleep)})
    assert patches[n.id]["telegram"]["status"] == "sent"
    assert patches[n.id]["telegram"]["attempts"] == 2
    assert sleep.calls == [3.0]


@respx.mock
async def test_a_failing_channel_never_blocks_the_other(http: httpx.AsyncClient) -> None:
    respx.post(HOOK).mock(side_effect=httpx.ConnectError("discord is down"))
    respx.post(SEND).mock(return_value=httpx.Response(200, json={"ok": True}))
    sleep = Sleeps()
    n = note(telegram="777", discord=HOOK)
    patches = await deliver(
        [n],
        {
            "telegram": TelegramChannel(http, TOKEN, sleep=sleep),
            "discord": DiscordChannel(http, attempts=3, backoff_s=0.5, sleep=sleep),
        },
    )
    assert patches[n.id]["telegram"]["status"] == "sent"
    assert patches[n.id]["discord"]["status"] == "retry"
    assert patches[n.id]["discord"]["attempts"] == 3
    assert "discord is down" in patches[n.id]["discord"]["error"]
    assert sleep.calls == [0.5, 1.0]


@respx.mock
async def test_server_errors_are_retried_then_left_for_the_job_retry(
    http: httpx.AsyncClient,
) -> None:
    route = respx.post(SEND).mock(return_value=httpx.Response(502, text="bad gateway"))
    n = note(telegram="777")
    patches = await deliver([n], {"telegram": TelegramChannel(http, TOKEN, sleep=Sleeps())})
    assert route.call_count == 3
    assert patches[n.id]["telegram"]["status"] == "retry"


@respx.mock
async def test_a_client_error_is_permanent_and_not_retried(http: httpx.AsyncClient) -> None:
    route = respx.post(SEND).mock(
        return_value=httpx.Response(
            400, json={"ok": False, "description": "Bad Request: chat not found"}
        )
    )
    n = note(telegram="nope")
    patches = await deliver([n], {"telegram": TelegramChannel(http, TOKEN, sleep=Sleeps())})
    assert route.call_count == 1
    assert patches[n.id]["telegram"]["status"] == "failed"
    assert "chat not found" in patches[n.id]["telegram"]["error"]


async def test_only_discord_webhook_urls_are_ever_called(http: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as router:
        n = note(discord="http://169.254.169.254/latest/meta-data")
        patches = await deliver([n], {"discord": DiscordChannel(http, sleep=Sleeps())})
        assert patches[n.id]["discord"] == {
            **patches[n.id]["discord"],
            "status": "failed",
            "attempts": 0,
        }
        assert router.calls.call_count == 0


async def test_channels_already_sent_are_not_sent_again(http: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as router:
        tg = router.post(SEND).mock(return_value=httpx.Response(200, json={"ok": True}))
        dc = router.post(HOOK).mock(return_value=httpx.Response(204))
        n = Outbound(
            uuid.uuid4(),
            "t",
            None,
            {"telegram": "1", "discord": HOOK},
            {
                "telegram": {"status": "sent", "attempts": 1},
                "discord": {"status": "retry", "attempts": 3},
            },
        )
        patches = await deliver(
            [n],
            {
                "telegram": TelegramChannel(http, TOKEN, sleep=Sleeps()),
                "discord": DiscordChannel(http, sleep=Sleeps()),
            },
        )
        assert tg.call_count == 0 and dc.call_count == 1
    assert patches[n.id] == {
        "discord": {**patches[n.id]["discord"], "status": "sent", "attempts": 4}
    }


async def test_telegram_without_a_token_fails_without_calling_out(http: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as router:
        n = note(telegram="777")
        patches = await deliver([n], {"telegram": TelegramChannel(http, None)})
        assert patches[n.id]["telegram"]["status"] == "failed"
        assert router.calls.call_count == 0
