// TradingView alerts -> signals. An alert carries the strategy's secret token (TradingView
// cannot set headers: `?token=` in the webhook URL, or "token" in the JSON message); only
// the token's SHA-256 is stored, in a schema the API never exposes. The alert becomes a
// signal of that strategy (entry), or closes / updates / cancels its latest live signal on
// the pair. Same alert id (or same message) twice -> one signal. An exit, close, update or
// cancel with no live signal on the pair (it arrived before its entry) is refused with 404.
import { db } from "../_shared/db.ts";
import { reply } from "../_shared/http.ts";
import { isRecord } from "../_shared/json_body.ts";
import { receiveWebhook } from "../_shared/webhook_inbox.ts";
import { limitSource, PER_TOKEN_PER_MINUTE } from "../_shared/webhook_limit.ts";

export const STALE_AFTER_S = 300;
const QUOTES = ["USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "EUR", "GBP", "TRY", "BTC", "ETH", "BNB"];

type Action = "entry" | "update" | "exit" | "close" | "cancel";

export interface Alert {
  action: Action;
  pair: string;
  side: "long" | "short" | null;
  price: number | null;
  stop_loss: number | null;
  take_profit: number | null;
  leverage: number | null;
  indicators: Record<string, unknown>;
  note: string | null;
  idempotency_key: string;
}

/** "BINANCE:BTCUSDT.P" / "btcusdt" / "BTC/USDT" -> "BTC/USDT" (null when no known quote). */
export function normalizePair(raw: string): string | null {
  let s = raw.trim().toUpperCase();
  if (s.includes(":") && !s.includes("/")) s = s.slice(s.indexOf(":") + 1);
  s = s.replace(/\.P$/, "").replace(/PERP$/, "").replace(/[-_]/g, "/");
  if (/^[A-Z0-9]{1,20}\/[A-Z0-9]{1,20}$/.test(s)) return s;
  for (const q of QUOTES) {
    if (s.endsWith(q) && s.length > q.length) return `${s.slice(0, -q.length)}/${q}`;
  }
  return null;
}

function num(v: unknown): number | null | undefined {
  if (v === undefined || v === null || v === "") return null;
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined; // undefined: present but not a price
}

async function sha256Hex(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parse a TradingView message into an alert, or the reason it is not one. */
export async function parseAlert(
  body: Record<string, unknown>,
  nowMs = Date.now(),
): Promise<Alert | { error: string; stale?: boolean }> {
  const rawAction = String(body.action ?? body.type ?? "entry").toLowerCase();
  const mapped: Record<string, [Action, "long" | "short" | null]> = {
    entry: ["entry", null], open: ["entry", null], buy: ["entry", "long"], long: ["entry", "long"],
    sell: ["entry", "short"], short: ["entry", "short"], update: ["update", null], exit: ["exit", null],
    close: ["close", null], cancel: ["cancel", null],
  };
  const m = mapped[rawAction];
  if (!m) return { error: `unknown action "${rawAction}"` };
  const [action, impliedSide] = m;
  const pairRaw = body.pair ?? body.ticker ?? body.symbol;
  const pair = typeof pairRaw === "string" ? normalizePair(pairRaw) : null;
  if (!pair) return { error: "pair (or ticker) is missing or not a BASE/QUOTE market" };
  const sideRaw = typeof body.side === "string" ? body.side.toLowerCase() : null;
  const side = sideRaw === "buy" || sideRaw === "long" ? "long" : sideRaw === "sell" || sideRaw === "short"
    ? "short"
    : impliedSide;
  if (action === "entry" && !side) return { error: "an entry needs a side (long/short, buy/sell)" };
  const price = num(body.price ?? body.close ?? body.entry);
  const stop = num(body.stop_loss ?? body.sl);
  const target = num(body.take_profit ?? body.tp);
  const leverage = num(body.leverage);
  if (price === undefined || stop === undefined || target === undefined || leverage === undefined) {
    return { error: "price, stop_loss, take_profit and leverage must be positive numbers" };
  }
  if ((action === "exit" || action === "close") && price === null) return { error: "an exit needs its price" };
  const when = body.time ?? body.timenow;
  if (when !== undefined) {
    const t = typeof when === "number" ? (when < 1e12 ? when * 1000 : when) : Date.parse(String(when));
    if (!Number.isFinite(t)) return { error: "time is not a timestamp" };
    if (Math.abs(nowMs - t) > STALE_AFTER_S * 1000) return { error: "alert is stale", stale: true };
  }
  const { token: _token, ...rest } = body;
  const id = body.alert_id ?? body.id;
  return {
    action,
    pair,
    side,
    price,
    stop_loss: stop,
    take_profit: target,
    leverage,
    indicators: isRecord(body.indicators) ? body.indicators : {},
    note: typeof body.note === "string" ? body.note.slice(0, 1000) : null,
    idempotency_key: typeof id === "string" || typeof id === "number"
      ? `tv:${id}`
      : `tv:${await sha256Hex(JSON.stringify(rest))}`,
  };
}

export async function handler(req: Request): Promise<Response> {
  // No signature: the alert's secret token is checked by the database.
  const delivery = await receiveWebhook(req);
  if (delivery instanceof Response) return delivery;
  const body = delivery.payload;
  const token = new URL(req.url).searchParams.get("token") ?? (typeof body.token === "string" ? body.token : null);
  if (!token) return reply(401, { error: "missing token" });
  const limited = await limitSource(`tradingview:${(await sha256Hex(token)).slice(0, 32)}`, PER_TOKEN_PER_MINUTE);
  if (limited) return limited;
  const alert = await parseAlert(body);
  if ("error" in alert) return reply(400, { error: alert.error });

  let result: Record<string, unknown>;
  try {
    const sql = db();
    const [row] = await sql<{ r: Record<string, unknown> }[]>`
      select public.ingest_tradingview_alert(${token}, ${sql.json(alert as never)}) as r`;
    result = row.r;
  } catch (e) {
    const code = (e as { code?: string }).code ?? "";
    if (code.startsWith("22") || code.startsWith("23")) {
      return reply(400, { error: `alert refused: ${(e as Error).message}` });
    }
    throw e;
  }
  switch (result.status) {
    case "invalid_token":
      return reply(401, { error: "invalid token" });
    case "created":
      return reply(201, result);
    case "duplicate":
      return reply(200, { ...result, duplicate: true });
    case "no_open_signal":
      // Not kept for later: TradingView does not retry, and an exit with nothing open cannot be
      // told from a stray or repeated one (the exit half of a reversal), which waiting for the
      // next entry would close at once. The provider sees the refusal in TradingView's alert log.
      return reply(404, {
        ...result,
        error: `no open signal on ${alert.pair} for this ${alert.action}: an alert that arrives ` +
          "before its entry is refused; send it again once the entry is open",
      });
    default:
      return reply(200, result);
  }
}

if (import.meta.main) Deno.serve(handler);
