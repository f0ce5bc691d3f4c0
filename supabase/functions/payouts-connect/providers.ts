// The providers' calls that connect a payout destination, as each documents them:
// - Stripe Connect: POST /v1/accounts (form-encoded, Bearer secret key) {type: express,
//   default_currency, capabilities[transfers][requested], metadata} -> {id: "acct_…"}, with
//   an Idempotency-Key per user so a retry reuses the account; then POST /v1/account_links
//   {account, refresh_url, return_url, type: account_onboarding} -> {url}.
// - Paystack: GET /bank/resolve?account_number&bank_code -> {status, data: {account_name}}
//   (422 {status: false, message} for details it cannot resolve); then POST
//   /transferrecipient (JSON) {type: nuban, name, account_number, bank_code, currency}
//   -> {status: true, data: {recipient_code: "RCP_…"}}.
// Base URLs can be pointed elsewhere (STRIPE_API_URL, PAYSTACK_API_URL).

export type PayoutProvider = "stripe" | "paystack";

/** The provider refused what the user sent (e.g. bank details): a 422 with its reason. */
export class Rejected extends Error {}

/** The provider could not be reached or failed on its side: a 502. */
export class Unavailable extends Error {}

export type Connected = {
  stripeAccount: string | null;
  onboardingUrl: string | null;
  recipientCode: string | null;
  accountName: string | null;
};

export function missingConfig(provider: PayoutProvider): string[] {
  const name = provider === "stripe" ? "STRIPE_SECRET_KEY" : "PAYSTACK_SECRET_KEY";
  return Deno.env.get(name) ? [] : [name];
}

function base(name: string, fallback: string): string {
  return (Deno.env.get(name) || fallback).replace(/\/$/, "");
}

async function call(provider: PayoutProvider, url: string, init: RequestInit): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  } catch (e) {
    throw new Unavailable(`could not reach ${provider}: ${(e as Error).name}`);
  }
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new Unavailable(`${provider} answered ${response.status} with a body that is not JSON`);
  }
  if (response.status === 429 || response.status >= 500) throw new Unavailable(`${provider} answered ${response.status}`);
  if (!response.ok) {
    const error = body.error as Record<string, unknown> | undefined;
    const message = (error?.message ?? body.message ?? `refused (${response.status})`) as string;
    // A wrong key is ours, not the user's.
    if (response.status === 401) throw new Unavailable(`${provider}: ${message}`);
    throw new Rejected(`${provider}: ${message}`);
  }
  return body;
}

function stripeHeaders(idempotencyKey?: string): Record<string, string> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${Deno.env.get("STRIPE_SECRET_KEY")}`,
    "content-type": "application/x-www-form-urlencoded",
  };
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  return headers;
}

export async function connectStripe(
  c: { userId: string; currency: string; account: string | null; refresh: string; done: string },
): Promise<Connected> {
  const api = base("STRIPE_API_URL", "https://api.stripe.com");
  let account = c.account;
  if (!account) {
    const created = await call("stripe", `${api}/v1/accounts`, {
      method: "POST",
      headers: stripeHeaders(`connect-account-user-${c.userId}`),
      body: new URLSearchParams({
        type: "express",
        default_currency: c.currency.toLowerCase(),
        "capabilities[transfers][requested]": "true",
        "metadata[user_id]": c.userId,
      }).toString(),
    });
    if (typeof created.id !== "string") throw new Unavailable("stripe returned no account id");
    account = created.id;
  }
  const link = await call("stripe", `${api}/v1/account_links`, {
    method: "POST",
    headers: stripeHeaders(),
    body: new URLSearchParams({ account, refresh_url: c.refresh, return_url: c.done, type: "account_onboarding" })
      .toString(),
  });
  if (typeof link.url !== "string") throw new Unavailable("stripe returned no onboarding link");
  return { stripeAccount: account, onboardingUrl: link.url, recipientCode: null, accountName: null };
}

export async function connectPaystack(
  c: { bankCode: string; accountNumber: string; currency: string },
): Promise<Connected> {
  const api = base("PAYSTACK_API_URL", "https://api.paystack.co");
  const headers = { authorization: `Bearer ${Deno.env.get("PAYSTACK_SECRET_KEY")}`, "content-type": "application/json" };
  const query = new URLSearchParams({ account_number: c.accountNumber, bank_code: c.bankCode });
  const resolved = await call("paystack", `${api}/bank/resolve?${query}`, { method: "GET", headers });
  const data = resolved.data as Record<string, unknown> | undefined;
  if (resolved.status !== true || typeof data?.account_name !== "string" || !data.account_name) {
    throw new Rejected(`paystack: ${resolved.message ?? "the account could not be resolved"}`);
  }
  const name = data.account_name;
  const created = await call("paystack", `${api}/transferrecipient`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      type: "nuban",
      name,
      account_number: c.accountNumber,
      bank_code: c.bankCode,
      currency: c.currency,
    }),
  });
  const recipient = created.data as Record<string, unknown> | undefined;
  if (created.status !== true || typeof recipient?.recipient_code !== "string") {
    throw new Rejected(`paystack: ${created.message ?? "no transfer recipient was created"}`);
  }
  return { stripeAccount: null, onboardingUrl: null, recipientCode: recipient.recipient_code, accountName: name };
}
