// The public API's routes and its OpenAPI 3.1 document, built from the same table: each
// route's scope, request body schema and response schema are what the handler enforces
// and what the document says (index_test.ts checks the two against each other).
import type { Schema } from "./schema.ts";

export type Scope =
  | "bots:read"
  | "bots:write"
  | "trades:read"
  | "signals:write"
  | "portfolio:read"
  | "backtests:read"
  | "backtests:write"
  | "data:read"
  | "data:write";
export const SCOPES: Scope[] = [
  "bots:read",
  "bots:write",
  "trades:read",
  "signals:write",
  "portfolio:read",
  "backtests:read",
  "backtests:write",
  "data:read",
  "data:write",
];

export type Route = {
  method: "GET" | "POST";
  /** OpenAPI path under /api, with {id} for a UUID. */
  path: string;
  operationId: string;
  summary: string;
  scope: Scope;
  body?: Schema;
  status: 200 | 201;
  response: Schema;
};

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const list = (name: string): Schema => ({
  type: "object",
  required: ["data"],
  properties: { data: { type: "array", items: ref(name) } },
});

/** A decimal amount: a JSON number or a string of digits (exact), as Postgres numeric. */
const AMOUNT: Schema = { type: ["number", "string"], pattern: "^[0-9]{1,20}(\\.[0-9]{1,12})?$", exclusiveMinimum: 0 };
const DECIMAL_OUT: Schema = { type: ["string", "null"], description: "a decimal, as a string" };
const PAIR_PATTERN = "^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$";
const STRATEGIES = ["sma_cross", "ema_cross", "rsi", "macd", "rsi_macd", "bollinger", "rules"];
const TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"];
const MODES = ["backtest", "optimize", "batch"];
const EXCHANGES = ["binance", "bybit", "mexc", "bitget", "kraken", "coinbase", "okx", "kucoin", "gate"];
/** The timeframes of TIMEFRAMES an exchange offers, where not all (ccxt's `timeframes`). */
export const EXCHANGE_TIMEFRAMES: Record<string, string[]> = {
  coinbase: ["1m", "5m", "15m", "30m", "1h", "1d"],
};
export const offersTimeframe = (exchange: string, timeframe: string): boolean =>
  (EXCHANGE_TIMEFRAMES[exchange] ?? TIMEFRAMES).includes(timeframe);
const TIME_OUT: Schema = { type: ["string", "null"], description: "a time, ISO 8601" };

export const SCHEMAS: Record<string, Schema> = {
  Bot: {
    type: "object",
    required: ["id", "name", "status", "exchange", "trading_pair", "timeframe", "strategy", "is_paper_trade"],
    properties: {
      id: { type: "string", format: "uuid" },
      name: { type: "string" },
      status: { type: "string", enum: ["running", "stopped", "error", "paused"] },
      status_reason: { type: ["string", "null"] },
      exchange: { type: "string" },
      trading_pair: { type: "string" },
      timeframe: { type: "string" },
      strategy: { type: "string" },
      strategy_id: { type: ["string", "null"], format: "uuid" },
      is_paper_trade: { type: "boolean" },
      initial_balance: DECIMAL_OUT,
      current_balance: DECIMAL_OUT,
      stake_amount: DECIMAL_OUT,
      profit: DECIMAL_OUT,
      total_trades: { type: "integer" },
      created_at: { type: "string" },
    },
  },
  NewBot: {
    type: "object",
    additionalProperties: false,
    required: ["name", "exchange", "trading_pair", "timeframe", "strategy", "initial_balance", "stake_amount"],
    properties: {
      name: { type: "string", minLength: 1, maxLength: 200 },
      exchange: {
        type: "string",
        enum: ["binance", "bybit", "mexc", "bitget", "kraken", "coinbase", "okx", "kucoin", "gate"],
      },
      trading_pair: { type: "string", pattern: PAIR_PATTERN },
      timeframe: { type: "string", enum: ["1m", "5m", "15m", "30m", "1h", "4h", "1d"] },
      strategy: { type: "string", enum: ["sma_cross", "ema_cross", "rsi", "macd", "rsi_macd", "bollinger", "rules"] },
      strategy_id: { type: "string", format: "uuid" },
      parameters: { type: "object" },
      initial_balance: AMOUNT,
      stake_amount: AMOUNT,
      max_open_trades: { type: "integer", minimum: 1, maximum: 100 },
      stop_loss: { type: "number", exclusiveMinimum: 0, maximum: 99.9999 },
      take_profit: { type: "number", exclusiveMinimum: 0, maximum: 100000 },
    },
  },
  Order: {
    type: "object",
    required: ["id", "bot_id", "symbol", "side", "order_type", "amount", "status", "created_at"],
    properties: {
      id: { type: "string", format: "uuid" },
      bot_id: { type: "string", format: "uuid" },
      client_order_id: { type: "string" },
      symbol: { type: "string" },
      side: { type: "string", enum: ["buy", "sell"] },
      order_type: { type: "string" },
      amount: DECIMAL_OUT,
      price: DECIMAL_OUT,
      filled: DECIMAL_OUT,
      average_price: DECIMAL_OUT,
      fee: DECIMAL_OUT,
      status: { type: "string" },
      is_paper_trade: { type: "boolean" },
      created_at: { type: "string" },
    },
  },
  Trade: {
    type: "object",
    required: ["id", "bot_id", "trading_pair", "side", "amount", "price", "status", "entry_time"],
    properties: {
      id: { type: "string", format: "uuid" },
      bot_id: { type: "string", format: "uuid" },
      trading_pair: { type: "string" },
      side: { type: "string", enum: ["buy", "sell"] },
      direction: { type: "string", enum: ["long", "short"] },
      amount: DECIMAL_OUT,
      price: DECIMAL_OUT,
      exit_price: DECIMAL_OUT,
      fee: DECIMAL_OUT,
      profit: DECIMAL_OUT,
      profit_percentage: DECIMAL_OUT,
      status: { type: "string" },
      exit_reason: { type: ["string", "null"] },
      entry_time: { type: "string" },
      exit_time: { type: ["string", "null"] },
      is_paper_trade: { type: "boolean" },
    },
  },
  NewSignal: {
    type: "object",
    additionalProperties: false,
    required: ["strategy_id", "pair", "side"],
    properties: {
      strategy_id: { type: "string", format: "uuid" },
      pair: { type: "string", pattern: PAIR_PATTERN },
      side: { type: "string", enum: ["long", "short"] },
      entry_price: AMOUNT,
      stop_loss: AMOUNT,
      take_profit: AMOUNT,
      leverage: { type: "number", minimum: 1, maximum: 125 },
      note: { type: "string", maxLength: 2000 },
      idempotency_key: { type: "string", minLength: 1, maxLength: 200 },
    },
  },
  Signal: {
    type: "object",
    required: ["id", "strategy_id", "pair", "side", "status", "created_at"],
    properties: {
      id: { type: "string", format: "uuid" },
      strategy_id: { type: "string", format: "uuid" },
      action: { type: "string" },
      status: { type: "string" },
      pair: { type: "string" },
      side: { type: "string", enum: ["long", "short"] },
      entry_price: DECIMAL_OUT,
      stop_loss: DECIMAL_OUT,
      take_profit: DECIMAL_OUT,
      leverage: DECIMAL_OUT,
      note: { type: ["string", "null"] },
      idempotency_key: { type: ["string", "null"] },
      created_at: { type: "string" },
    },
  },
  Holding: {
    type: "object",
    required: ["symbol", "total_units"],
    properties: {
      symbol: { type: "string" },
      currency: { type: ["string", "null"] },
      total_units: DECIMAL_OUT,
      average_cost: DECIMAL_OUT,
      price: DECIMAL_OUT,
      previous_close: DECIMAL_OUT,
      market_value: DECIMAL_OUT,
      unrealized_pnl: DECIMAL_OUT,
      day_change: DECIMAL_OUT,
      account_count: { type: ["integer", "null"] },
      updated_at: TIME_OUT,
    },
  },
  Portfolio: {
    type: "object",
    required: ["value", "holdings"],
    properties: {
      value: {
        type: "object",
        required: ["total_value", "cash", "holdings_count"],
        properties: {
          market_value: DECIMAL_OUT,
          unrealized_pnl: DECIMAL_OUT,
          day_change: DECIMAL_OUT,
          day_change_percent: DECIMAL_OUT,
          holdings_count: { type: "integer" },
          cash: DECIMAL_OUT,
          total_value: DECIMAL_OUT,
          updated_at: TIME_OUT,
        },
      },
      holdings: { type: "array", items: ref("Holding") },
    },
  },
  NewBacktest: {
    type: "object",
    additionalProperties: false,
    required: ["strategy", "timeframe"],
    properties: {
      mode: { type: "string", enum: MODES },
      strategy: { type: "string", enum: STRATEGIES },
      strategy_id: { type: "string", format: "uuid" },
      parameters: { type: "object" },
      exchange: {
        type: "string",
        enum: ["binance", "bybit", "mexc", "bitget", "kraken", "coinbase", "okx", "kucoin", "gate"],
      },
      trading_pair: { type: "string", pattern: PAIR_PATTERN },
      trading_pairs: { type: "array", items: { type: "string", pattern: PAIR_PATTERN }, maxItems: 20 },
      timeframe: { type: "string", enum: TIMEFRAMES },
      start_date: { type: "string", format: "date-time" },
      end_date: { type: "string", format: "date-time" },
      settings: { type: "object" },
      optimization: { type: "object" },
    },
  },
  BacktestResult: {
    type: "object",
    required: ["id", "final_balance", "total_return_percentage", "total_trades"],
    properties: {
      id: { type: "string", format: "uuid" },
      trading_pair: { type: "string" },
      initial_balance: DECIMAL_OUT,
      final_balance: DECIMAL_OUT,
      total_return: DECIMAL_OUT,
      total_return_percentage: DECIMAL_OUT,
      max_drawdown: DECIMAL_OUT,
      sharpe_ratio: DECIMAL_OUT,
      sortino_ratio: DECIMAL_OUT,
      win_rate: DECIMAL_OUT,
      profit_factor: DECIMAL_OUT,
      total_trades: { type: "integer" },
      winning_trades: { type: "integer" },
      losing_trades: { type: "integer" },
      best_trade: DECIMAL_OUT,
      worst_trade: DECIMAL_OUT,
      avg_trade: DECIMAL_OUT,
      calmar_ratio: DECIMAL_OUT,
      trades: { type: "array" },
      equity_curve: { type: "array" },
      created_at: { type: "string" },
    },
  },
  Backtest: {
    type: "object",
    required: ["id", "strategy", "trading_pair", "timeframe", "status", "created_at"],
    properties: {
      id: { type: "string", format: "uuid" },
      mode: { type: "string", enum: MODES },
      strategy: { type: "string", enum: STRATEGIES },
      strategy_id: { type: ["string", "null"], format: "uuid" },
      parameters: { type: "object" },
      exchange: { type: "string" },
      trading_pair: { type: "string" },
      timeframe: { type: "string" },
      start_date: TIME_OUT,
      end_date: TIME_OUT,
      settings: { type: "object" },
      status: { type: "string", enum: ["queued", "running", "completed", "failed", "cancelled"] },
      progress: DECIMAL_OUT,
      error: { type: ["string", "null"] },
      compute_seconds: DECIMAL_OUT,
      credits_charged: DECIMAL_OUT,
      started_at: TIME_OUT,
      finished_at: TIME_OUT,
      created_at: { type: "string" },
      trading_pairs: { type: ["array", "null"], items: { type: "string" } },
      optimization: { type: "object" },
      summary: { type: ["object", "null"] },
      result: { anyOf: [ref("BacktestResult"), { type: "null" }] },
      results: { type: "array", items: ref("BacktestResult") },
      ranked: { type: ["array", "null"], items: ref("RankedSet") },
    },
  },
  RankedSet: {
    type: "object",
    required: ["params"],
    properties: {
      params: { type: "object" },
      stats: { type: "object" },
      oos_stats: { type: ["object", "null"] },
    },
  },
  NewDataRequest: {
    type: "object",
    additionalProperties: false,
    required: ["trading_pair", "timeframe", "start_date"],
    properties: {
      exchange: { type: "string", enum: EXCHANGES, description: "binance when left out" },
      trading_pair: { type: "string", pattern: PAIR_PATTERN },
      timeframe: { type: "string", enum: TIMEFRAMES, description: "one the exchange offers (coinbase has no 4h)" },
      start_date: { type: "string", format: "date-time", description: "the first candle's open time, in the past" },
      end_date: { type: "string", format: "date-time", description: "candles opening before it; now when left out" },
      idempotency_key: {
        type: "string", minLength: 1, maxLength: 200,
        description: "a retry with the same key answers 200 with the first request and counts once",
      },
    },
  },
  DataRequest: {
    type: "object",
    required: ["id", "exchange", "trading_pair", "timeframe", "start_date", "status", "progress", "created_at"],
    properties: {
      id: { type: "string", format: "uuid" },
      exchange: { type: "string" },
      trading_pair: { type: "string" },
      timeframe: { type: "string" },
      start_date: { type: "string" },
      end_date: TIME_OUT,
      status: { type: "string", enum: ["queued", "running", "completed", "failed"] },
      progress: DECIMAL_OUT,
      candles_stored: { type: ["integer", "null"] },
      missing_candles: { type: ["integer", "null"] },
      gaps: { type: ["array", "null"] },
      error: { type: ["string", "null"] },
      idempotency_key: { type: ["string", "null"] },
      started_at: TIME_OUT,
      finished_at: TIME_OUT,
      created_at: { type: "string" },
    },
  },
  Error: {
    type: "object",
    required: ["error"],
    properties: {
      error: { type: "string" },
      scope: { type: "string" },
      field: { type: "string" },
      constraint: { type: "string", description: "the database constraint or plan limit that refused it" },
    },
  },
};

export const ROUTES: Route[] = [
  { method: "GET", path: "/v1/bots", operationId: "listBots", summary: "The key's user's bots, newest first",
    scope: "bots:read", status: 200, response: list("Bot") },
  { method: "POST", path: "/v1/bots", operationId: "createBot", summary: "Create a paper-trading bot (stopped)",
    scope: "bots:write", body: ref("NewBot"), status: 201, response: ref("Bot") },
  { method: "GET", path: "/v1/bots/{id}", operationId: "getBot", summary: "One bot",
    scope: "bots:read", status: 200, response: ref("Bot") },
  { method: "POST", path: "/v1/bots/{id}/start", operationId: "startBot", summary: "Set a bot running",
    scope: "bots:write", status: 200, response: ref("Bot") },
  { method: "POST", path: "/v1/bots/{id}/pause", operationId: "pauseBot", summary: "Pause a bot",
    scope: "bots:write", status: 200, response: ref("Bot") },
  { method: "POST", path: "/v1/bots/{id}/stop", operationId: "stopBot", summary: "Stop a bot",
    scope: "bots:write", status: 200, response: ref("Bot") },
  { method: "GET", path: "/v1/bots/{id}/orders", operationId: "listBotOrders", summary: "A bot's orders, newest first",
    scope: "trades:read", status: 200, response: list("Order") },
  { method: "GET", path: "/v1/bots/{id}/trades", operationId: "listBotTrades", summary: "A bot's trades, newest first",
    scope: "trades:read", status: 200, response: list("Trade") },
  { method: "POST", path: "/v1/signals", operationId: "publishSignal",
    summary: "Publish a signal on one of the key's provider's strategies", scope: "signals:write",
    body: ref("NewSignal"), status: 201, response: ref("Signal") },
  { method: "GET", path: "/v1/portfolio", operationId: "getPortfolio",
    summary: "The key's user's brokerage portfolio: its value and holdings", scope: "portfolio:read", status: 200,
    response: ref("Portfolio") },
  { method: "GET", path: "/v1/backtests", operationId: "listBacktests", summary: "The key's user's backtests, newest first",
    scope: "backtests:read", status: 200, response: list("Backtest") },
  { method: "POST", path: "/v1/backtests", operationId: "startBacktest",
    summary: "Queue a backtest run (the plan's backtest quota applies)", scope: "backtests:write",
    body: ref("NewBacktest"), status: 201, response: ref("Backtest") },
  { method: "GET", path: "/v1/backtests/{id}", operationId: "getBacktest",
    summary: "One backtest run, with its result once completed", scope: "backtests:read", status: 200,
    response: ref("Backtest") },
  { method: "GET", path: "/v1/data-requests", operationId: "listDataRequests",
    summary: "The key's user's historical data downloads, newest first", scope: "data:read", status: 200,
    response: list("DataRequest") },
  { method: "POST", path: "/v1/data-requests", operationId: "requestData",
    summary: "Request a historical candle download (the plan's data_requests_per_month applies)", scope: "data:write",
    body: ref("NewDataRequest"), status: 201, response: ref("DataRequest") },
  { method: "GET", path: "/v1/data-requests/{id}", operationId: "getDataRequest",
    summary: "One data download: its status, progress, candles stored and gaps", scope: "data:read", status: 200,
    response: ref("DataRequest") },
];

export function resolveRef(r: string): Schema {
  const name = r.replace("#/components/schemas/", "");
  const schema = SCHEMAS[name];
  if (!schema) throw new Error(`unknown schema ${r}`);
  return schema;
}

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ref("Error") } },
});

const RATE_HEADERS = {
  "RateLimit-Limit": { description: "requests a minute the plan allows", schema: { type: "integer" } },
  "RateLimit-Remaining": { description: "requests left now", schema: { type: "integer" } },
  "RateLimit-Reset": { description: "seconds until the allowance is whole again", schema: { type: "integer" } },
};

/** The OpenAPI 3.1 document served at /api/openapi.json. */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const parameters = r.path.includes("{id}")
      ? [{ name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } }]
      : undefined;
    const responses: Record<string, unknown> = {
      [String(r.status)]: {
        description: "success",
        headers: RATE_HEADERS,
        content: { "application/json": { schema: r.response } },
      },
      "401": errorResponse("a missing, malformed, unknown, revoked or expired key (never says which)"),
      "403": errorResponse(`the key lacks the scope ${r.scope}, or the plan does not include API access`),
      "429": {
        ...errorResponse("over the plan's api_requests_per_minute"),
        headers: { ...RATE_HEADERS, "Retry-After": { description: "seconds to wait", schema: { type: "integer" } } },
      },
    };
    if (r.body || parameters) responses["400"] = errorResponse("a body or argument the schema or the database refuses, naming the field");
    if (parameters) responses["404"] = errorResponse("nothing with that id visible to the key's user");
    if (r.body?.$ref && resolveRef(r.body.$ref).properties?.idempotency_key) {
      responses["409"] = errorResponse("the idempotency_key was already used (for a data request: by a different request)");
    }
    paths[r.path] ??= {};
    paths[r.path][r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      security: [{ apiKey: [r.scope] }],
      "x-scope": r.scope,
      ...(parameters ? { parameters } : {}),
      ...(r.body
        ? { requestBody: { required: true, content: { "application/json": { schema: r.body } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Tradefleet API",
      version: "1.0.0",
      description: "Authenticate with `Authorization: Bearer tf_live_…` (a key created with the " +
        "create_api_key RPC). Requests act as the key's user: row-level security decides what they see. " +
        "Amounts are decimals, returned as strings.",
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", bearerFormat: "tf_live_… / tf_test_… API key" },
      },
    },
  };
}
