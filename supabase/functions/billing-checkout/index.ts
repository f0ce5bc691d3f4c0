// Starts a payment for the calling user (Supabase JWT verified).
// POST {provider: stripe | paystack | tripay, plan_id | credit_pack_id, period?: month | year,
//       channel? (Tripay's payment channel, e.g. "BRIVA")}
//   -> 201 {invoice_id, url, provider, amount, currency, existing: false}
//      200 {... existing: true} for the same user, item and period while its invoice is open
// POST {action: "portal"} -> 200 {url}: the Stripe billing portal of the user's customer.
// The amount and currency come from the database (public.billing_checkout_open), never
// from the request; the invoice is pending until the provider's webhook pays it. When the
// provider refuses, the invoice is removed again (nothing half-created).
import { db } from "../_shared/db.ts";
import { reply } from "../_shared/http.ts";
import { readUserBody, userId } from "../_shared/user_request.ts";
import { missingConfig, type Provider, ProviderError, PROVIDERS, startPayment, stripePortal } from "./providers.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CHANNEL = /^[A-Z0-9_]{2,32}$/;

type Input = {
  provider: Provider;
  planId: string | null;
  creditPackId: string | null;
  period: "month" | "year";
  channel: string | null;
};

function parse(b: Record<string, unknown>): Input {
  if (typeof b.provider !== "string" || !PROVIDERS.includes(b.provider as Provider)) {
    throw new Error(`provider must be one of ${PROVIDERS.join(", ")}`);
  }
  const id = (name: string): string | null => {
    const v = b[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string" || !UUID.test(v)) throw new Error(`${name} must be a UUID`);
    return v.toLowerCase();
  };
  const planId = id("plan_id"), creditPackId = id("credit_pack_id");
  if ((planId === null) === (creditPackId === null)) throw new Error("name either plan_id or credit_pack_id");
  const period = b.period ?? "month";
  if (period !== "month" && period !== "year") throw new Error("period must be month or year");
  if (creditPackId !== null && b.period !== undefined) throw new Error("a credit pack has no period");
  let channel: string | null = null;
  if (b.provider === "tripay") {
    if (typeof b.channel !== "string" || !CHANNEL.test(b.channel)) {
      throw new Error("channel must name a Tripay payment channel (e.g. BRIVA, QRIS)");
    }
    channel = b.channel;
  } else if (b.channel !== undefined) {
    throw new Error("channel is only for tripay");
  }
  return { provider: b.provider as Provider, planId, creditPackId, period, channel };
}

function returnUrl(): string {
  return Deno.env.get("BILLING_RETURN_URL") || "http://127.0.0.1:3000/billing";
}

/** A refusal from the database, as the app should see it (null: not one of ours). */
function refusal(e: unknown): Response | null {
  const err = e as { code?: string; message?: string; constraint_name?: string };
  const body = { error: err.message ?? "refused", code: err.constraint_name ?? null };
  if (err.code === "P0002") return reply(404, body);
  if (err.code === "22023") return reply(400, body);
  if (err.code === "23514") return reply(err.constraint_name === "billing_checkout_in_progress" ? 409 : 400, body);
  return null;
}

async function portal(user: string): Promise<Response> {
  const missing = missingConfig("stripe");
  if (missing.length) return reply(400, { error: `stripe is not configured (${missing.join(", ")} unset)` });
  const [row] = await db()`select public.billing_customer(${user}, 'stripe') as customer`;
  if (!row?.customer) return reply(404, { error: "you have no Stripe customer yet: pay with Stripe first" });
  try {
    return reply(200, { url: await stripePortal(row.customer as string, returnUrl()) });
  } catch (e) {
    if (e instanceof ProviderError) return reply(502, { error: e.message });
    throw e;
  }
}

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return reply(405, { error: "use POST" });
  const user = await userId(req);
  if (user instanceof Response) return user;
  const body = await readUserBody(req);
  if (body instanceof Response) return body;
  if (body.action === "portal") return await portal(user);
  if (body.action !== undefined) return reply(400, { error: "action must be portal, or left out to check out" });
  let input: Input;
  try {
    input = parse(body);
  } catch (e) {
    return reply(400, { error: (e as Error).message });
  }
  const missing = missingConfig(input.provider);
  if (missing.length) {
    return reply(400, { error: `${input.provider} is not configured (${missing.join(", ")} unset)` });
  }

  const sql = db();
  let invoice: Record<string, unknown>;
  try {
    const [row] = await sql`
      select public.billing_checkout_open(${user}, ${input.provider}, ${input.planId}, ${input.creditPackId},
                                          ${input.period}) as invoice`;
    invoice = row.invoice as Record<string, unknown>;
  } catch (e) {
    const r = refusal(e);
    if (r) return r;
    throw e;
  }
  const answer = (status: number, url: string) =>
    reply(status, {
      invoice_id: invoice.id, url, provider: input.provider, amount: String(invoice.amount),
      currency: invoice.currency, existing: invoice.existing,
    });
  if (invoice.existing) return answer(200, invoice.checkout_url as string);

  const invoiceId = invoice.id as string;
  if (input.provider === "paystack" && !invoice.customer_email) {
    await sql`select public.billing_checkout_abort(${invoiceId})`;
    return reply(400, { error: "paystack needs an email address on your profile" });
  }
  try {
    const [customer] = input.provider === "stripe"
      ? await sql`select public.billing_customer(${user}, 'stripe') as customer`
      : [{ customer: null }];
    const [trial] = input.provider === "stripe" && input.planId !== null
      ? await sql`select public.billing_trial_days(${user}, ${input.planId}) as days`
      : [{ days: 0 }];
    const started = await startPayment(input.provider, {
      invoiceId, userId: user, email: (invoice.customer_email as string | null) ?? null,
      planId: input.planId, creditPackId: input.creditPackId, description: String(invoice.description),
      currency: String(invoice.currency), amountMinor: Number(invoice.amount_minor), period: input.period,
      channel: input.channel, customer: (customer?.customer as string | null) ?? null, returnUrl: returnUrl(),
      trialDays: Number(trial?.days ?? 0),
    });
    await sql`select public.billing_checkout_started(${invoiceId}, ${started.url}, ${started.reference},
                                                     ${started.refs}::text[])`;
    return answer(201, started.url);
  } catch (e) {
    await sql`select public.billing_checkout_abort(${invoiceId})`;
    if (e instanceof ProviderError) return reply(502, { error: e.message });
    throw e;
  }
}

if (import.meta.main) {
  Deno.serve(handler);
}
