"""The console's web application (Starlette, server-rendered Jinja2 templates).

Every page but ``/login`` needs an admin session: the token comes in the session cookie
(set by the login form) or an ``Authorization: Bearer`` header. Missing or expired: back
to the login page; not an admin: 403. Pages are a frame around one part; the browser
fetches ``/part/NAME`` again when the live events name one of the part's topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from worker.console import queries
from worker.console.auth import NotAdmin, Session, SignInError, TokenExpired, Verifier
from worker.console.database import Cursor, Database, Refused
from worker.console.events import Hub
from worker.console.settings import ConsoleSettings

HERE = Path(__file__).parent
COOKIE = "tradefleet_console"
SSE_PING_S = 15.0

Reader = Callable[[Cursor, queries.Params], Awaitable[dict[str, Any]]]

# name -> (title, topics that redraw it, what it reads)
PAGES: dict[str, tuple[str, tuple[str, ...], Reader]] = {
    "overview": ("Overview", ("queue", "bots", "fleet", "webhooks", "audit"), queries.overview),
    "fleet": ("Fleet", ("fleet", "queue"), queries.fleet),
    "queue": ("Queue", ("queue",), queries.queue),
    "bots": ("Bots", ("bots",), queries.bots),
    "webhooks": ("Webhooks", ("webhooks",), queries.webhooks),
    "ledger": ("Ledger", ("audit",), queries.ledger),
    "services": ("Services", ("services",), queries.services),
    "marketplace": ("Marketplace", ("audit",), queries.marketplace),
    "users": ("Users", ("audit",), queries.users),
    "audit": ("Audit log", ("audit",), queries.audit),
}


def _age(seconds: Any) -> str:
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} d"


def _ts(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "—" if value is None else str(value)


def _num(value: Any) -> str:
    """A figure as people read it: thousands separated, no trailing zeros."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if d == d.to_integral_value():
        return f"{d:,.0f}"
    return f"{d.normalize():,f}"


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["age"] = _age
    env.filters["ts"] = _ts
    env.filters["num"] = _num
    return env


class Console:
    """The application and what it holds: settings, verifier, pool, live-event hub."""

    def __init__(self, settings: ConsoleSettings, *, database_url: str | None = None) -> None:
        self.settings = settings
        self.verifier = Verifier(settings)
        self.hub = Hub(settings.console_event_interval_s)
        self.templates = _templates()
        self._url = database_url or settings.database_url.get_secret_value()
        self.db: Database | None = None
        self.app = Starlette(
            routes=[
                Route("/login", self.login_page, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/events", self.events),
                Route("/part/{name}", self.part),
                Route("/queue/jobs/{job_id:int}/retry", self.retry_job, methods=["POST"]),
                Route("/queue/jobs/{job_id:int}/discard", self.discard_job, methods=["POST"]),
                Route("/webhooks/events/{event_id}/replay", self.replay_webhook, methods=["POST"]),
                Route(
                    "/marketplace/strategies/{strategy_id}/verify", self.verify, methods=["POST"]
                ),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
                Route("/users/{user_id}/role", self.set_role, methods=["POST"]),
                Route("/", self.page),
                Route("/{name}", self.page),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.db = await Database.open(self._url)
        listener = asyncio.create_task(self.hub.listen(self._url))
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.db.close()

    # --- rendering -------------------------------------------------------------------------

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(pages=PAGES, **context)
        return HTMLResponse(html, status_code=status)

    def refused(self, e: Exception, session: Session | None = None) -> Response:
        if isinstance(e, TokenExpired):
            response: Response = RedirectResponse("/login?expired=1", status_code=303)
            response.delete_cookie(COOKIE)
            return response
        if isinstance(e, NotAdmin) or (isinstance(e, Refused) and e.status == 403):
            return self.render("denied.html", 403, message=str(e), session=session)
        if isinstance(e, Refused):
            return self.render("error.html", e.status, message=str(e), session=session)
        return RedirectResponse("/login", status_code=303)

    async def session(self, request: Request) -> Session:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
        if not token:
            raise SignInError("sign in first")
        return await self.verifier.verify(token)

    async def read(self, session: Session, name: str, request: Request) -> dict[str, Any]:
        assert self.db is not None
        params = {k: v for k, v in request.query_params.items() if k not in ("done", "failed")}
        async with self.db.as_admin(session) as cur:
            return await PAGES[name][2](cur, params)

    # --- pages -----------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        expired = request.query_params.get("expired") == "1"
        message = "Your session has expired: sign in again." if expired else None
        return self.render("login.html", message=message, session=None)

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        try:
            session = await self.verifier.verify(token)
            assert self.db is not None
            async with self.db.as_admin(session):
                pass  # the database's own admin check (an admin demoted since is refused)
        except TokenExpired:
            return self.render("login.html", 401, message="This session has expired.", session=None)
        except (NotAdmin, Refused) as e:
            return self.render("denied.html", 403, message=str(e), session=None)
        except SignInError as e:
            return self.render("login.html", 401, message=str(e), session=None)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            session.token,
            max_age=max(1, session.expires_at - int(time.time())),
            httponly=True,
            samesite="strict",
            secure=self.settings.console_secure_cookie,
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def page(self, request: Request) -> Response:
        name = request.path_params.get("name", "overview")
        if name not in PAGES:
            return self.render("error.html", 404, message=f"no page {name!r}", session=None)
        try:
            session = await self.session(request)
            data = await self.read(session, name, request)
        except (SignInError, Refused) as e:
            return self.refused(e)
        search = request.query_params.get("q")
        return self.render(
            "page.html",
            query=f"?q={quote(search)}" if search else "",
            name=name,
            session=session,
            flash_done=request.query_params.get("done"),
            flash_failed=request.query_params.get("failed"),
            **data,
        )

    async def part(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in PAGES:
            return self.render("error.html", 404, message=f"no page {name!r}", session=None)
        try:
            session = await self.session(request)
            data = await self.read(session, name, request)
        except (SignInError, Refused) as e:
            return self.refused(e)
        return self.render(f"parts/{name}.html", name=name, session=session, **data)

    async def events(self, request: Request) -> Response:
        try:
            session = await self.session(request)
        except SignInError as e:
            return self.refused(e)
        return StreamingResponse(
            self._stream(session),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def _stream(self, session: Session) -> AsyncIterator[str]:
        with self.hub.subscribe() as queue:
            yield "retry: 2000\n\n"
            while True:
                if time.time() >= session.expires_at:
                    yield "event: expired\ndata: sign in again\n\n"
                    return
                try:
                    topic = await asyncio.wait_for(queue.get(), SSE_PING_S)
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                yield f"event: change\ndata: {topic}\n\n"

    # --- actions ---------------------------------------------------------------------------

    async def _act(
        self,
        request: Request,
        back: str,
        action: Callable[[Cursor, dict[str, str]], Awaitable[str]],
        keep: str = "",
    ) -> Response:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return self.render(
                "error.html", 403, message="cross-site request refused", session=None
            )
        try:
            session = await self.session(request)
        except SignInError as e:
            return self.refused(e)
        raw = parse_qs((await request.body()).decode("utf-8", "replace"))
        form = {k: v[0] for k, v in raw.items()}
        assert self.db is not None
        try:
            async with self.db.as_admin(session) as cur:
                message = await action(cur, form)
        except Refused as e:
            if e.session:
                return self.refused(e, session)
            return RedirectResponse(f"{back}?{keep}failed={quote(str(e))}", status_code=303)
        return RedirectResponse(f"{back}?{keep}done={quote(message)}", status_code=303)

    async def retry_job(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        return await self._act(request, "/queue", lambda cur, _: queries.retry_job(cur, job_id))

    async def discard_job(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        return await self._act(
            request,
            "/queue",
            lambda cur, form: queries.discard_job(cur, job_id, form.get("reason", "")),
        )

    async def replay_webhook(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        return await self._act(
            request,
            "/webhooks",
            lambda cur, form: queries.replay_webhook_event(cur, event_id, form.get("reason", "")),
        )

    async def verify(self, request: Request) -> Response:
        strategy_id = str(request.path_params["strategy_id"])

        async def act(cur: Cursor, form: dict[str, str]) -> str:
            verified = form.get("verified") == "true"
            return await queries.verify_strategy(cur, strategy_id, verified, form.get("reason", ""))

        return await self._act(request, "/marketplace", act)

    async def set_role(self, request: Request) -> Response:
        user_id = str(request.path_params["user_id"])
        search = request.query_params.get("q", "")

        async def act(cur: Cursor, form: dict[str, str]) -> str:
            return await queries.set_user_role(
                cur, user_id, form.get("role", ""), form.get("reason", "")
            )

        keep = f"q={quote(search)}&" if search else ""
        return await self._act(request, "/users", act, keep)


def create_app(settings: ConsoleSettings, *, database_url: str | None = None) -> Starlette:
    return Console(settings, database_url=database_url).app
