// Connects the calling provider's payout destination (Supabase JWT verified), while they wait.
// POST {provider: "stripe", currency?: "USD"}
//   -> 201 {provider, status: "pending", onboarding_url, currency}: a Stripe Connect Express
//      account (the one already created is kept) and its onboarding link; the destination
//      becomes ready once Stripe says transfers are active.
// POST {provider: "paystack", bank_code, account_number, currency?: "NGN"}
//   -> 201 {provider, status: "ready", account_name, account_last4, currency}: the bank
//      details resolved by Paystack (GET /bank/resolve), then a transfer recipient.
// Refusals write nothing: bad input 400; not a provider 403; a payout on its way 409; bank
// details Paystack rejects 422 (its reason); a provider unreachable or erring 502.
import { db } from "../_shared/db.ts";
import { reply } from "../_shared/http.ts";
import { readUserBody, userId } from "../_shared/user_request.ts";
import { type Connected, connectPaystack, connectStripe, missingConfig, PayoutProvider, Rejected, Unavailable } from "./providers.ts";

const CURRENCY = /^[A-Za-z]{3}$/;
const BANK_CODE = /^[0-9A-Za-z]{1,20}$/;
const ACCOUNT_NUMBER = /^[0-9]{6,20}$/;

type Input = { provider: PayoutProvider; currency: string; bankCode: string | null; accountNumber: string | null };

function parse(b: Record<string, unknown>): Input {
  if (b.provider !== "stripe" && b.provider !== "paystack") throw new Error("provider must be stripe or paystack");
  const currency = b.currency ?? (b.provider === "stripe" ? "USD" : "NGN");
  if (typeof currency !== "string" || !CURRENCY.test(currency)) throw new Error("currency must be a three-letter code");
  if (b.provider === "stripe") {
    if (b.bank_code !== undefined || b.account_number !== undefined) {
      throw new Error("stripe collects bank details in its onboarding: send only provider and currency");
    }
    return { provider: "stripe", currency: currency.toUpperCase(), bankCode: null, accountNumber: null };
  }
  if (typeof b.bank_code !== "string" || !BANK_CODE.test(b.bank_code)) {
    throw new Error("bank_code must be the bank's Paystack code (1 to 20 letters or digits)");
  }
  if (typeof b.account_number !== "string" || !ACCOUNT_NUMBER.test(b.account_number)) {
    throw new Error("account_number must be 6 to 20 digits");
  }
  return { provider: "paystack", currency: currency.toUpperCase(), bankCode: b.bank_code, accountNumber: b.account_number };
}

/** A refusal from the database, as the app should see it (null: not one of ours). */
function refusal(e: unknown): Response | null {
  const err = e as { code?: string; message?: string; constraint_name?: string };
  const body = { error: err.message ?? "refused", code: err.constraint_name ?? null };
  if (err.code === "42501") return reply(403, body);
  if (err.code === "22023") return reply(400, body);
  if (err.code === "23514") return reply(err.constraint_name === "payout_destinations_no_payout_in_flight" ? 409 : 400, body);
  return null;
}

function returnUrls(): { refresh: string; done: string } {
  return {
    refresh: Deno.env.get("BILLING_CONNECT_REFRESH_URL") || "http://localhost:3000/payouts?refresh=1",
    done: Deno.env.get("BILLING_CONNECT_RETURN_URL") || "http://localhost:3000/payouts?connected=1",
  };
}

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return reply(405, { error: "use POST" });
  const user = await userId(req);
  if (user instanceof Response) return user;
  const body = await readUserBody(req);
  if (body instanceof Response) return body;
  let input: Input;
  try {
    input = parse(body);
  } catch (e) {
    return reply(400, { error: (e as Error).message });
  }
  const missing = missingConfig(input.provider);
  if (missing.length) return reply(400, { error: `${input.provider} is not configured (${missing.join(", ")} unset)` });

  const sql = db();
  let existing: string | null;
  try {
    const [row] = await sql`select public.payout_connect_begin(${user}, ${input.provider}) as begin`;
    existing = (row.begin as { stripe_account_id: string | null }).stripe_account_id;
  } catch (e) {
    const r = refusal(e);
    if (r) return r;
    throw e;
  }

  let connected: Connected;
  try {
    connected = input.provider === "stripe"
      ? await connectStripe({ userId: user, currency: input.currency, account: existing, ...returnUrls() })
      : await connectPaystack({ bankCode: input.bankCode!, accountNumber: input.accountNumber!, currency: input.currency });
  } catch (e) {
    if (e instanceof Rejected) return reply(422, { error: e.message });
    if (e instanceof Unavailable) return reply(502, { error: e.message });
    throw e;
  }

  let saved: Record<string, unknown>;
  try {
    const [row] = await sql`
      select d.provider, d.status, d.currency, d.onboarding_url, d.account_name, d.account_last4
        from public.payout_connect_save(${user}, ${input.provider}, ${input.currency}, ${connected.stripeAccount},
                                        ${connected.onboardingUrl}, ${input.bankCode},
                                        ${input.accountNumber?.slice(-4) ?? null}, ${connected.recipientCode},
                                        ${connected.accountName}) d`;
    saved = row;
  } catch (e) {
    const r = refusal(e);
    if (r) return r;
    throw e;
  }
  const answer: Record<string, unknown> = { provider: saved.provider, status: saved.status, currency: saved.currency };
  if (input.provider === "stripe") answer.onboarding_url = saved.onboarding_url;
  else Object.assign(answer, { account_name: saved.account_name, account_last4: saved.account_last4 });
  return reply(201, answer);
}

if (import.meta.main) Deno.serve(handler);
