// The public API: REST endpoints over the same tables apps use, for callers holding an
// API key (`Authorization: Bearer tf_live_…`).
//   GET /api/openapi.json                      the OpenAPI 3.1 document (no key needed)
//   /api/v1/…                                  see ROUTES in openapi.ts
// Each request: the route, then the body against its schema (400 naming the field), then
// one call of public.api_authorize (key → user, scope, plan, rate limit: 401, 403, 429),
// then the statement in a transaction acting as the key's user (role authenticated and
// the user's claims, as PostgREST does), so row-level security decides what it sees and
// changes. A refused request writes nothing of its own. Every answer to a known key is
// metered after it is made (usage.ts): key, endpoint, status and latency; the records
// waiting in the isolate ride along in the next api_authorize call. An organisation's key acts as its
// paying owner with the claim organisation_id: it reaches that organisation's bots only, and
// the bots it creates belong to the organisation.
import { db } from "../_shared/db.ts";
import { bearerToken } from "../_shared/jwt.ts";
import { clientIp, decodeUtf8, MAX_BODY_BYTES, readBody } from "../_shared/http.ts";
import { isRecord, parseStorableJson } from "../_shared/json_body.ts";
import { EXCHANGE_TIMEFRAMES, offersTimeframe, openApiDocument, resolveRef, type Route, ROUTES } from "./openapi.ts";
import { check } from "./schema.ts";
import { recordCall, returnCalls, takeCalls } from "./usage.ts";

const KEY = /^tf_(live|test)_[A-Za-z0-9]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 100;

type Json = Record<string, unknown>;
type Sql = ReturnType<typeof db>;
// deno-lint-ignore no-explicit-any
type Tx = any;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** The route a method and path name, with its id; or the 404 / 405 reply. */
export function matchRoute(method: string, pathname: string): { route: Route; id?: string } | Response {
  const path = pathname.replace(/^\/functions\/v1/, "").replace(/^\/api(?=\/|$)/, "").replace(/\/+$/, "") || "/";
  let allowed = false;
  for (const route of ROUTES) {
    const m = pattern(route).exec(path);
    if (!m) continue;
    if (route.method !== method) {
      allowed = true;
      continue;
    }
    return { route, id: m[1] };
  }
  return allowed ? json(405, { error: `use ${ROUTES.filter((r) => pattern(r).test(path)).map((r) => r.method).join(" or ")}` })
    : json(404, { error: "no such endpoint; see /api/openapi.json" });
}

function pattern(route: Route): RegExp {
  return new RegExp("^" + route.path.replace("{id}", "([^/]+)") + "$");
}

function rateHeaders(a: Json): Record<string, string> {
  const h: Record<string, string> = {};
  if (a.limit !== undefined) {
    h["RateLimit-Limit"] = String(a.limit);
    h["RateLimit-Remaining"] = String(a.remaining);
    h["RateLimit-Reset"] = String(a.reset);
  }
  if (a.retry_after !== undefined) h["Retry-After"] = String(a.retry_after);
  return h;
}

const BOT = `b.id, b.name, b.status, b.status_reason, b.exchange, b.trading_pair, b.timeframe, b.strategy, b.strategy_id,
  b.is_paper_trade, b.initial_balance::text, b.current_balance::text, b.stake_amount::text, b.profit::text, b.total_trades,
  b.created_at`;
const ORDER = `o.id, o.bot_id, o.client_order_id, o.symbol, o.side, o.order_type, o.amount::text, o.price::text,
  o.filled::text, o.average_price::text, o.fee::text, o.status, o.is_paper_trade, o.created_at`;
const TRADE = `t.id, t.bot_id, t.trading_pair, t.side, t.direction, t.amount::text, t.price::text, t.exit_price::text,
  t.fee::text, t.profit::text, t.profit_percentage::text, t.status, t.exit_reason, t.entry_time, t.exit_time,
  t.is_paper_trade`;
const HOLDING = `h.symbol, h.currency, h.total_units::text, h.average_cost::text, h.price::text, h.previous_close::text,
  h.market_value::text, h.unrealized_pnl::text, h.day_change::text, h.account_count, h.updated_at`;
const VALUE = `v.market_value::text, v.unrealized_pnl::text, v.day_change::text, v.day_change_percent::text,
  v.holdings_count::int, v.cash::text, v.total_value::text, v.updated_at`;
const RUN = `r.id, r.strategy, r.strategy_id, r.parameters, r.exchange, r.trading_pair, r.timeframe, r.start_date, r.end_date,
  r.settings, r.status, r.progress::text, r.error, r.compute_seconds::text, r.credits_charged::text, r.started_at,
  r.finished_at, r.created_at, r.mode, r.trading_pairs, r.optimization, r.summary`;
const RESULT = `x.id, x.trading_pair, x.initial_balance::text, x.final_balance::text, x.total_return::text,
  x.total_return_percentage::text, x.max_drawdown::text, x.sharpe_ratio::text, x.sortino_ratio::text, x.win_rate::text,
  x.profit_factor::text, x.total_trades, x.winning_trades, x.losing_trades, x.best_trade::text, x.worst_trade::text,
  x.avg_trade::text, x.calmar_ratio::text, x.trades, x.equity_curve, x.created_at`;
const SIGNAL = `s.id, s.strategy_id, s.action, s.status, s.pair, s.side, s.entry_price::text, s.stop_loss::text,
  s.take_profit::text, s.leverage::text, s.note, s.idempotency_key, s.created_at`;

const DATA_REQUEST = `d.id, d.exchange, d.trading_pair, d.timeframe, d.start_date, d.end_date, d.status,
  d.progress::text, d.candles_stored, d.missing_candles, d.gaps, d.error, d.idempotency_key, d.started_at,
  d.finished_at, d.created_at`;

const str = (v: unknown): string | null => (v === undefined || v === null ? null : String(v));

/** Rows as JSON: timestamps in ISO 8601. */
function plain(rows: Json[]): Json[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])));
}

/** What the schema cannot say of a data request's body: 400 naming the field, or null. */
function dataRequestProblem(body: Json): Json | null {
  const exchange = String(body.exchange ?? "binance");
  if (!offersTimeframe(exchange, String(body.timeframe))) {
    return {
      error: `${exchange} does not offer timeframe ${body.timeframe} (it offers ${EXCHANGE_TIMEFRAMES[exchange].join(", ")})`,
      field: "timeframe",
    };
  }
  const start = Date.parse(String(body.start_date));
  if (start >= Date.now()) return { error: "start_date must be in the past", field: "start_date" };
  if (body.end_date !== undefined && Date.parse(String(body.end_date)) <= start) {
    return { error: "end_date must be after start_date", field: "end_date" };
  }
  return null;
}

/** The request a retry's idempotency key names, as the retry's answer: 200 with it, or 409
 * when the key was used for a different request. */
async function replayDataRequest(tx: Tx, body: Json, key: string): Promise<[number, unknown] | null> {
  const rows = await tx.unsafe(
    `select ${DATA_REQUEST}, d.exchange = $2 and d.trading_pair = $3 and d.timeframe = $4
            and d.start_date = $5::timestamptz and d.end_date is not distinct from $6::timestamptz as same
       from public.data_requests d where d.user_id = auth.uid() and d.idempotency_key = $1`,
    [key, body.exchange ?? "binance", body.trading_pair, body.timeframe, body.start_date, str(body.end_date)],
  );
  if (!rows.length) return null;
  const { same, ...first } = rows[0];
  if (!same) {
    return [409, { error: "idempotency_key was already used for a different data request", field: "idempotency_key" }];
  }
  return [200, plain([first])[0]];
}

async function botVisible(tx: Tx, id: string): Promise<boolean> {
  return (await tx.unsafe("select 1 from public.bots b where b.id = $1", [id])).length > 0;
}

/** Run the route's statement as the user (inside `tx`); the reply's status and body. */
async function act(tx: Tx, route: Route, id: string | undefined, body: Json): Promise<[number, unknown]> {
  switch (route.operationId) {
    case "listBots":
      return [200, { data: plain(await tx.unsafe(`select ${BOT} from public.bots b order by b.created_at desc, b.id limit ${PAGE}`)) }];
    case "getBot": {
      const rows = await tx.unsafe(`select ${BOT} from public.bots b where b.id = $1`, [id]);
      return rows.length ? [200, plain(rows)[0]] : [404, { error: "no such bot" }];
    }
    case "createBot": {
      const rows = await tx.unsafe(
        `insert into public.bots as b (user_id, organisation_id, name, exchange, trading_pair, timeframe, strategy,
                                       strategy_id, parameters, initial_balance, stake_amount, max_open_trades, stop_loss,
                                       take_profit, is_paper_trade)
         values (auth.uid(), (auth.jwt() ->> 'organisation_id')::uuid, $1, $2, $3, $4, $5, $6::uuid, coalesce($7::jsonb, '{}'), $8::numeric, $9::numeric,
                 coalesce($10::integer, 1), $11::numeric, $12::numeric, true)
         returning ${BOT}`,
        [body.name, body.exchange, body.trading_pair, body.timeframe, body.strategy, str(body.strategy_id),
         body.parameters ?? null, str(body.initial_balance),
         str(body.stake_amount), str(body.max_open_trades), str(body.stop_loss), str(body.take_profit)],
      );
      return [201, plain(rows)[0]];
    }
    case "startBot":
    case "pauseBot":
    case "stopBot": {
      const status = { startBot: "running", pauseBot: "paused", stopBot: "stopped" }[route.operationId];
      const rows = await tx.unsafe(`update public.bots b set status = $2 where b.id = $1 returning ${BOT}`, [id, status]);
      return rows.length ? [200, plain(rows)[0]] : [404, { error: "no such bot" }];
    }
    case "listBotOrders":
      if (!(await botVisible(tx, id!))) return [404, { error: "no such bot" }];
      return [200, {
        data: plain(await tx.unsafe(
          `select ${ORDER} from public.orders o where o.bot_id = $1 order by o.created_at desc, o.id limit ${PAGE}`, [id],
        )),
      }];
    case "listBotTrades":
      if (!(await botVisible(tx, id!))) return [404, { error: "no such bot" }];
      return [200, {
        data: plain(await tx.unsafe(
          `select ${TRADE} from public.trades t where t.bot_id = $1 order by t.entry_time desc, t.id limit ${PAGE}`, [id],
        )),
      }];
    case "getPortfolio": {
      const [value] = await tx.unsafe(`select ${VALUE} from public.portfolio_value v where v.user_id = auth.uid()`);
      const holdings = await tx.unsafe(
        `select ${HOLDING} from public.portfolio_holdings h where h.user_id = auth.uid()
          order by h.market_value desc nulls last, h.symbol limit 500`,
      );
      return [200, {
        value: value ? plain([value])[0] : {
          market_value: null, unrealized_pnl: null, day_change: "0", day_change_percent: null, holdings_count: 0,
          cash: "0", total_value: "0", updated_at: null,
        },
        holdings: plain(holdings),
      }];
    }
    case "listBacktests":
      return [200, {
        data: plain(await tx.unsafe(`select ${RUN} from public.backtest_runs r order by r.created_at desc, r.id limit ${PAGE}`)),
      }];
    case "getBacktest": {
      const rows = await tx.unsafe(`select ${RUN} from public.backtest_runs r where r.id = $1`, [id]);
      if (!rows.length) return [404, { error: "no such backtest" }];
      // The latest result, with an optimisation's ranked parameter sets read from it.
      const results = await tx.unsafe(
        `select ${RESULT}, x.metadata -> 'optimization' -> 'ranked' as ranked
           from public.backtest_results x where x.run_id = $1 order by x.created_at desc limit 1`,
        [id],
      );
      const run = plain(rows)[0] as Json;
      // A batch's markets, best return first; an optimisation's ranked parameter sets.
      const markets = run.mode === "batch"
        ? await tx.unsafe(
          `select ${RESULT} from public.backtest_results x where x.run_id = $1
            order by x.total_return_percentage desc nulls last, x.trading_pair limit 20`,
          [id],
        )
        : [];
      const [latest] = results;
      const ranked = run.mode === "optimize" && Array.isArray(latest?.ranked) ? latest.ranked : null;
      if (latest) delete latest.ranked;
      return [200, {
        ...run,
        result: latest ? plain([latest])[0] : null,
        results: plain(markets),
        ranked,
      }];
    }
    case "startBacktest": {
      // A batch names its markets (trading_pairs; the first is its trading_pair), the other
      // modes one market.
      const pairs = Array.isArray(body.trading_pairs) ? body.trading_pairs as string[] : null;
      if (body.mode === "batch" && !pairs) {
        return [400, { error: "trading_pairs is required for a batch", field: "trading_pairs" }];
      }
      if (body.mode !== "batch" && pairs) {
        return [400, { error: "trading_pairs is for a batch only (mode batch)", field: "trading_pairs" }];
      }
      if (!pairs && body.trading_pair === undefined) {
        return [400, { error: "trading_pair is required", field: "trading_pair" }];
      }
      const rows = await tx.unsafe(
        `insert into public.backtest_runs as r (user_id, strategy, strategy_id, parameters, exchange, trading_pair, timeframe,
                                                start_date, end_date, settings, mode, trading_pairs, optimization)
         values (auth.uid(), $1, $2::uuid, coalesce($3::jsonb, '{}'), coalesce($4, 'binance'),
                 coalesce(($11::text[])[1], $5), $6, $7::timestamptz, $8::timestamptz, coalesce($9::jsonb, '{}'),
                 coalesce($10, 'backtest'), $11::text[], coalesce($12::jsonb, '{}'))
         returning ${RUN}`,
        [body.strategy, str(body.strategy_id), body.parameters ?? null, str(body.exchange), str(body.trading_pair),
         body.timeframe, str(body.start_date), str(body.end_date), body.settings ?? null, str(body.mode), pairs,
         body.optimization ?? null],
      );
      return [201, plain(rows)[0]];
    }
    case "publishSignal": {
      const rows = await tx.unsafe(
        `insert into public.signals as s (strategy_id, provider_id, pair, side, entry_price, stop_loss, take_profit, leverage,
                                          note, idempotency_key)
         values ($1::uuid, auth.uid(), $2, $3, $4::numeric, $5::numeric, $6::numeric, coalesce($7::numeric, 1), $8, $9)
         returning ${SIGNAL}`,
        [body.strategy_id, body.pair, body.side, str(body.entry_price), str(body.stop_loss), str(body.take_profit),
         str(body.leverage), str(body.note), str(body.idempotency_key)],
      );
      return [201, plain(rows)[0]];
    }
    case "listDataRequests":
      return [200, {
        data: plain(await tx.unsafe(
          `select ${DATA_REQUEST} from public.data_requests d order by d.created_at desc, d.id limit ${PAGE}`,
        )),
      }];
    case "getDataRequest": {
      const rows = await tx.unsafe(`select ${DATA_REQUEST} from public.data_requests d where d.id = $1`, [id]);
      return rows.length ? [200, plain(rows)[0]] : [404, { error: "no such data request" }];
    }
    case "requestData": {
      const problem = dataRequestProblem(body);
      if (problem) return [400, problem];
      const key = str(body.idempotency_key);
      const replay = key === null ? null : await replayDataRequest(tx, body, key);
      if (replay) return replay;
      try {
        // In a savepoint: a racing retry that committed first leaves this one to answer.
        const rows = await tx.savepoint((sp: Tx) =>
          sp.unsafe(
            `insert into public.data_requests as d (exchange, trading_pair, timeframe, start_date, end_date, idempotency_key)
             values (coalesce($1, 'binance'), $2, $3, $4::timestamptz, $5::timestamptz, $6)
             returning ${DATA_REQUEST}`,
            [str(body.exchange), body.trading_pair, body.timeframe, body.start_date, str(body.end_date), key],
          )
        );
        return [201, plain(rows)[0]];
      } catch (e) {
        const raced = key !== null && (e as { constraint_name?: string }).constraint_name === "data_requests_idempotency_key_unique";
        if (raced) return (await replayDataRequest(tx, body, key))!;
        throw e;
      }
    }
  }
  throw new Error(`unrouted operation ${route.operationId}`);
}

/** A database refusal as the API's reply: the user's mistake is a 4xx naming it. */
function refusal(e: unknown): Response | null {
  const err = e as { code?: string; message?: string; constraint_name?: string; column_name?: string };
  const code = err.code ?? "";
  const body: Json = { error: err.message ?? "refused" };
  if (err.column_name) body.field = err.column_name;
  if (err.constraint_name) body.constraint = err.constraint_name;
  if (code === "42501" || code === "P0004") return json(403, body);
  if (code === "P0002") return json(404, body);
  if (code === "23505") return json(409, body);
  if (code.startsWith("22") || code.startsWith("23") || code === "P0001") return json(400, body);
  return null;
}

async function readJson(req: Request): Promise<Json | Response> {
  const bytes = await readBody(req);
  if (bytes === null) return json(413, { error: `body is larger than ${MAX_BODY_BYTES} bytes` });
  const text = decodeUtf8(bytes);
  if (text === null) return json(400, { error: "body is not valid UTF-8" });
  if (!text.trim()) return json(400, { error: "body is required (a JSON object)" });
  const parsed = parseStorableJson(text);
  if (!parsed.ok) return json(400, { error: parsed.error });
  if (!isRecord(parsed.value)) return json(400, { error: "body must be a JSON object" });
  return parsed.value;
}

/** Who a call is metered against, once the key is known. */
type Meter = { key_id?: string; user_id?: string; endpoint?: string };

export async function handler(req: Request, sql: Sql = db()): Promise<Response> {
  const started = performance.now();
  const meter: Meter = {};
  let status = 500;
  try {
    const res = await respond(req, sql, meter);
    status = res.status;
    return res;
  } finally {
    if (meter.key_id && meter.user_id && meter.endpoint) {
      recordCall(sql, {
        key_id: meter.key_id, user_id: meter.user_id, endpoint: meter.endpoint, status,
        latency_ms: Math.round(performance.now() - started), at: new Date().toISOString(),
      });
    }
  }
}

async function respond(req: Request, sql: Sql, meter: Meter): Promise<Response> {
  const url = new URL(req.url);
  if (/^(\/functions\/v1)?\/api\/openapi\.json$/.test(url.pathname)) {
    if (req.method !== "GET") return json(405, { error: "use GET" });
    return json(200, openApiDocument(`${url.origin}/api`));
  }
  const matched = matchRoute(req.method, url.pathname);
  if (matched instanceof Response) return matched;
  const { route, id } = matched;

  const unauthorized = json(401, { error: "invalid API key" }, { "WWW-Authenticate": 'Bearer realm="api"' });
  const key = bearerToken(req);
  if (!key || !KEY.test(key)) {
    await req.body?.cancel();
    return unauthorized;
  }
  if (id !== undefined && !UUID.test(id)) return json(400, { error: "id must be a UUID", field: "id" });
  let body: Json = {};
  if (route.body) {
    const read = await readJson(req);
    if (read instanceof Response) return read;
    const problem = check(read, route.body, "", resolveRef);
    if (problem) return json(400, { error: problem, field: problem.split(" ")[0] });
    body = read;
  } else {
    await req.body?.cancel();
  }

  // The isolate's waiting usage records ride along (usage.ts).
  const calls = takeCalls();
  let a: unknown;
  try {
    [{ a }] = await sql`select public.api_authorize(${key}, ${route.scope}, ${clientIp(req)}::inet,
                                                    ${calls ? sql.json(calls) : null}::jsonb) as a`;
  } catch (e) {
    returnCalls(sql, calls);
    throw e;
  }
  const auth = a as Json;
  const headers = rateHeaders(auth);
  if (auth.status === 401) return unauthorized;
  if (typeof auth.key_id === "string" && typeof auth.user_id === "string") {
    Object.assign(meter, { key_id: auth.key_id, user_id: auth.user_id, endpoint: `${route.method} ${route.path}` });
  }
  if (auth.status !== 200) {
    const reply: Json = { error: auth.error };
    if (auth.scope) reply.scope = auth.scope;
    return json(auth.status as number, reply, headers);
  }

  try {
    const [status, out] = await sql.begin(async (tx: Tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify(auth.claims)}, true),
                      set_config('role', 'authenticated', true)`;
      const result = await act(tx, route, id, body);
      if (result[0] >= 400) throw new Reply(result);
      return result;
    });
    return json(status, out, headers);
  } catch (e) {
    if (e instanceof Reply) return json(e.result[0], e.result[1], headers);
    const refused = refusal(e);
    if (refused) {
      for (const [k, v] of Object.entries(headers)) refused.headers.set(k, v);
      return refused;
    }
    throw e;
  }
}

/** A 4xx reply that rolls the request's transaction back. */
class Reply extends Error {
  constructor(readonly result: [number, unknown]) {
    super("reply");
  }
}

if (import.meta.main) {
  Deno.serve((req) => handler(req));
}
