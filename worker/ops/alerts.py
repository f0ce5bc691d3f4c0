"""Operator alerts: the periodic job ``ops.alerts``.

Every ``ALERTS_INTERVAL_S`` (30 s) the rules of ``ALERT_RULES`` are evaluated against the
database. Each rule fires for zero or more keys (a worker, a queue, a job kind, a
provider, a service); a rule firing for a key is an incident, one row of
``public.alert_incidents``:

- a new incident is announced once to the operators' channels (Telegram, Discord, an HTTP
  webhook); an announcement that reached no channel is tried again at the next run;
- when the rule stops firing for its key, a recovery message is sent and the incident is
  resolved (one that was never announced is resolved silently).

The evaluation runs in one transaction under a transaction-level advisory lock: two
workers evaluating at once take turns, and the second sees what the first recorded, so
an incident is never announced twice, even across restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.fleet.registry import JobContext, NoPayload, Registry
from worker.notify import Delivery, DiscordChannel, TelegramChannel

from .settings import OpsSettings, Rule

KIND = "ops.alerts"
log = logging.getLogger("tradefleet.alerts")
LOCK = "select pg_advisory_xact_lock(hashtextextended('tradefleet.ops.alerts', 0))"


@dataclass(frozen=True)
class Firing:
    """A rule firing for a key now."""

    rule: Rule
    key: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    """Where alerts go; ``send`` is true when at least one channel took the message."""

    @property
    def configured(self) -> bool: ...

    async def send(self, text: str, event: dict[str, Any]) -> bool: ...


class WebhookChannel:
    """Posts each alert as JSON (``text`` plus the incident's fields) to an HTTP endpoint."""

    name = "webhook"

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def post(self, event: dict[str, Any]) -> Delivery:
        try:
            response = await self.http.post(self.url, json=event, timeout=10.0)
        except httpx.HTTPError as e:
            return Delivery("retry", 1, f"{type(e).__name__}: {e}")
        if response.is_success:
            return Delivery("sent", 1)
        return Delivery("failed", 1, f"HTTP {response.status_code}")


@dataclass
class ChannelSender:
    """The operators' channels of the settings: Telegram (a chat id, the notify bot token),
    Discord (a webhook URL) and an HTTP webhook, each optional."""

    telegram: tuple[TelegramChannel, str] | None = None
    discord: tuple[DiscordChannel, str] | None = None
    webhook: WebhookChannel | None = None

    @property
    def configured(self) -> bool:
        return any((self.telegram, self.discord, self.webhook))

    async def send(self, text: str, event: dict[str, Any]) -> bool:
        deliveries: list[tuple[str, Delivery]] = []
        if self.telegram is not None:
            channel, chat = self.telegram
            deliveries.append(("telegram", await channel.send(chat, text)))
        if self.discord is not None:
            discord, url = self.discord
            deliveries.append(("discord", await discord.send(url, text)))
        if self.webhook is not None:
            deliveries.append(("webhook", await self.webhook.post({"text": text, **event})))
        for name, d in deliveries:
            if d.status != "sent":
                log.warning(
                    "alert not delivered to %s: %s",
                    name,
                    d.error,
                    extra={"action": "alert_undelivered", "channel": name, "error": d.error},
                )
        return any(d.status == "sent" for _, d in deliveries)


def channel_sender(
    settings: OpsSettings, http: httpx.AsyncClient, telegram_token: str | None, telegram_url: str
) -> ChannelSender:
    sender = ChannelSender()
    if settings.alert_telegram_chat_id and telegram_token:
        sender.telegram = (
            TelegramChannel(http, telegram_token, base_url=telegram_url.rstrip("/")),
            settings.alert_telegram_chat_id,
        )
    if settings.alert_discord_webhook_url is not None:
        sender.discord = (
            DiscordChannel(http),
            settings.alert_discord_webhook_url.get_secret_value(),
        )
    if settings.alert_webhook_url is not None:
        sender.webhook = WebhookChannel(http, settings.alert_webhook_url.get_secret_value())
    return sender


# -- the rules --------------------------------------------------------------------------------


def _age(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600} h {s % 3600 // 60} min" if s >= 3600 else f"{s // 60} min {s % 60} s"


async def _rows(
    conn: AsyncConnection[Any], sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql, params)
    return await cur.fetchall()


async def worker_dead(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        """select id::text as id, name, host, heartbeat_at, stopped_at from public.workers
            where status = 'dead' and stopped_at > now() - make_interval(secs => %(for_s)s)""",
        {"for_s": s.alert_worker_dead_for_s},
    )
    return [
        Firing(
            "worker_dead",
            r["id"],
            f"worker {r['name']} on {r['host']} is dead: no heartbeat since "
            f"{r['heartbeat_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            {"name": r["name"], "host": r["host"]},
        )
        for r in rows
    ]


async def queue_waiting(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        """select queue, count(*) as waiting, extract(epoch from now() - min(run_at))::float8 as age_s
             from public.jobs
            where status = 'queued' and run_at < now() - make_interval(secs => %(wait_s)s)
            group by queue""",
        {"wait_s": s.alert_queue_wait_s},
    )
    return [
        Firing(
            "queue_waiting",
            r["queue"],
            f"queue {r['queue']}: {r['waiting']} job(s) ready to run for more than "
            f"{_age(s.alert_queue_wait_s)}, the oldest for {_age(r['age_s'])}",
            {"waiting": r["waiting"], "oldest_s": round(r["age_s"])},
        )
        for r in rows
    ]


async def dead_jobs(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        """select kind, count(*) as dead, (array_agg(last_error order by finished_at desc))[1] as error
             from public.jobs
            where status = 'dead' and finished_at > now() - make_interval(secs => %(window_s)s)
            group by kind having count(*) >= %(n)s""",
        {"window_s": s.alert_dead_jobs_window_s, "n": s.alert_dead_jobs},
    )
    return [
        Firing(
            "dead_jobs",
            r["kind"],
            f"{r['dead']} {r['kind']} job(s) died in the last {_age(s.alert_dead_jobs_window_s)}; "
            f"last error: {(r['error'] or '')[:300]}",
            {"dead": r["dead"]},
        )
        for r in rows
    ]


async def webhook_failures(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        """select provider, count(*) as failed, (array_agg(error order by received_at desc))[1] as error
             from public.webhook_events where status = 'failed'
            group by provider having count(*) >= %(n)s""",
        {"n": s.alert_webhook_failures},
    )
    return [
        Firing(
            "webhook_failures",
            r["provider"],
            f"{r['failed']} {r['provider']} webhook event(s) failed; "
            f"last error: {(r['error'] or '')[:300]}",
            {"failed": r["failed"]},
        )
        for r in rows
    ]


async def ledger_audit(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        "select rule, count(*) as n, min(detail) as detail from public.credit_audit() group by rule",
        {},
    )
    return [
        Firing(
            "ledger_audit",
            r["rule"],
            f"the credit ledger breaks {r['rule']} ({r['n']} time(s)): {r['detail']}",
            {"violations": r["n"]},
        )
        for r in rows
    ]


async def service_down(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        """select service, target, error, changed_at from public.service_status
            where status = 'down'""",
        {},
    )
    return [
        Firing(
            "service_down",
            f"{r['service']}:{r['target']}" if r["target"] else r["service"],
            f"{r['service']}{' ' + r['target'] if r['target'] else ''} is down since "
            f"{r['changed_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: {(r['error'] or '')[:300]}",
        )
        for r in rows
    ]


async def bot_errors(conn: AsyncConnection[Any], s: OpsSettings) -> list[Firing]:
    rows = await _rows(
        conn,
        """select count(*) as errors, count(distinct bot_id) as bots from public.bot_logs
            where log_level = 'error' and created_at > now() - make_interval(secs => %(window_s)s)""",
        {"window_s": s.alert_bot_errors_window_s},
    )
    n = rows[0]["errors"] if rows else 0
    if n < s.alert_bot_errors:
        return []
    return [
        Firing(
            "bot_errors",
            "",
            f"{n} bot errors in the last {_age(s.alert_bot_errors_window_s)} "
            f"(from {rows[0]['bots']} bot(s))",
            {"errors": n, "bots": rows[0]["bots"]},
        )
    ]


RULE_CHECKS = {
    "worker_dead": worker_dead,
    "queue_waiting": queue_waiting,
    "dead_jobs": dead_jobs,
    "webhook_failures": webhook_failures,
    "ledger_audit": ledger_audit,
    "service_down": service_down,
    "bot_errors": bot_errors,
}


# -- the evaluator --------------------------------------------------------------------------


def _event(state: str, incident: dict[str, Any]) -> dict[str, Any]:
    def plain(v: object) -> object:
        return v.isoformat() if isinstance(v, datetime) else v

    keys = ("rule", "key", "summary", "details", "opened_at", "resolved_at")
    return {"state": state, **{k: plain(incident.get(k)) for k in keys}}


async def evaluate(
    pool: AsyncConnectionPool,
    settings: OpsSettings,
    sender: Sender,
    rules: Iterable[Rule] | None = None,
) -> dict[str, list[str]]:
    """Evaluate ``rules`` (default: the settings'), open, announce and resolve incidents.
    Returns the incidents ``opened``, ``announced``, ``resolved`` and still ``open``."""
    chosen: Sequence[Rule] = list(rules if rules is not None else settings.alert_rules)
    report: dict[str, list[str]] = {"opened": [], "announced": [], "resolved": [], "open": []}
    reachable = sender.configured

    async def send(text: str, event: dict[str, Any]) -> bool:
        """Send unless a message of this run already reached no channel (the rest wait for
        the next run rather than each wait out the channels' retries)."""
        nonlocal reachable
        if not reachable:
            return False
        reachable = await sender.send(text, event)
        return reachable

    async with pool.connection() as conn, conn.transaction():
        await conn.execute(LOCK)
        firing: dict[tuple[str, str], Firing] = {}
        for rule in chosen:
            for f in await RULE_CHECKS[rule](conn, settings):
                firing[(f.rule, f.key)] = f
        incidents = {
            (r["rule"], r["key"]): r
            for r in await _rows(
                conn, "select * from public.alert_incidents where resolved_at is null", {}
            )
        }
        for ident, f in firing.items():
            name = f"{f.rule}:{f.key}" if f.key else f.rule
            incident = incidents.get(ident)
            if incident is None:
                [incident] = await _rows(
                    conn,
                    """insert into public.alert_incidents (rule, key, summary, details)
                       values (%(rule)s, %(key)s, %(summary)s, %(details)s) returning *""",
                    {
                        "rule": f.rule,
                        "key": f.key,
                        "summary": f.summary,
                        "details": Jsonb(f.details),
                    },
                )
                report["opened"].append(name)
            else:
                await conn.execute(
                    """update public.alert_incidents
                          set last_seen_at = now(), details = %(details)s
                        where id = %(id)s""",
                    {"id": incident["id"], "details": Jsonb(f.details)},
                )
            if incident["notified_at"] is None and await send(
                f"ALERT [{f.rule}] {incident['summary']}", _event("firing", incident)
            ):
                await conn.execute(
                    "update public.alert_incidents set notified_at = now() where id = %(id)s",
                    {"id": incident["id"]},
                )
                report["announced"].append(name)
            report["open"].append(name)
        for ident, incident in incidents.items():
            if ident in firing or incident["rule"] not in chosen:
                continue
            name = f"{ident[0]}:{ident[1]}" if ident[1] else ident[0]
            recovered = False
            if incident["notified_at"] is not None:
                since = datetime.now(UTC) - incident["opened_at"]
                recovered = await send(
                    f"RESOLVED [{incident['rule']}] after {_age(since.total_seconds())}: "
                    f"{incident['summary']}",
                    _event("resolved", {**incident, "resolved_at": datetime.now(UTC)}),
                )
                if not recovered and sender.configured:
                    report["open"].append(name)
                    continue  # the recovery message goes at the next run
            await conn.execute(
                """update public.alert_incidents
                      set resolved_at = now(),
                          recovery_notified_at = case when %(sent)s then now() end
                    where id = %(id)s""",
                {"id": incident["id"], "sent": recovered},
            )
            report["resolved"].append(name)
    return report


def rules_due(settings: OpsSettings, now: float) -> list[Rule]:
    """The rules a run at ``now`` evaluates: all of ``ALERT_RULES`` but the ledger audit,
    which runs at the first run of each ``ALERT_LEDGER_AUDIT_EVERY_S`` (its incidents stay
    as they are in between)."""
    every = settings.alert_ledger_audit_every_s
    audit = int(now // every) != int((now - settings.alerts_interval_s) // every)
    return [r for r in settings.alert_rules if r != "ledger_audit" or audit]


def register(registry: Registry, settings: OpsSettings, sender: Sender) -> None:
    """``ops.alerts`` every ``ALERTS_INTERVAL_S``, once across the fleet."""

    @registry.job(KIND, payload=NoPayload, max_attempts=3, timeout_s=300)
    async def alerts(ctx: JobContext[NoPayload]) -> dict[str, list[str]]:
        report = await evaluate(ctx.pool, settings, sender, rules_due(settings, time.time()))
        if report["opened"] or report["resolved"]:
            ctx.log.info("alerts", extra={"action": "alerts", **report})
        return report

    registry.every(KIND, timedelta(seconds=settings.alerts_interval_s), KIND)
