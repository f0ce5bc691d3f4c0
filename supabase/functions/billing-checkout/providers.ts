// The providers' calls that start a payment, as each documents them:
// - Stripe: POST /v1/checkout/sessions (form-encoded, Bearer secret key, Idempotency-Key)
//   -> {id: "cs_…", url}; POST /v1/billing_portal/sessions {customer, return_url} -> {url}.
// - Paystack: POST /transaction/initialize (JSON, Bearer secret key) {email, amount in
//   subunits, currency, reference, callback_url, metadata}
//   -> {status: true, data: {authorization_url, access_code, reference}}.
// - Tripay: POST /transaction/create (JSON, Bearer API key) closed transaction {method,
//   merchant_ref, amount, customer_*, order_items, return_url, expired_time, signature =
//   hex HMAC-SHA256(private key, merchant code + merchant_ref + amount)}
//   -> {success: true, data: {reference, checkout_url}}.
// Base URLs can be pointed elsewhere (STRIPE_API_URL, PAYSTACK_API_URL, TRIPAY_API_URL).
import { hmacSha256 } from "../_shared/hmac.ts";

export type Provider = "stripe" | "paystack" | "tripay";
export const PROVIDERS: Provider[] = ["stripe", "paystack", "tripay"];

/** The provider answered with an error, or could not be reached. */
export class ProviderError extends Error {}

export type Checkout = {
  invoiceId: string;
  userId: string;
  email: string | null;
  planId: string | null;
  creditPackId: string | null;
  description: string;
  currency: string;
  amountMinor: number;
  period: "month" | "year";
  channel: string | null;
  customer: string | null;
  returnUrl: string;
  /** Stripe plans: days of trial before the first charge (0: none). */
  trialDays: number;
};

export type Started = { url: string; reference: string; refs: string[] };

/** What is missing for a provider to be used: the names of unset secrets. */
export function missingConfig(provider: Provider): string[] {
  const needs: Record<Provider, string[]> = {
    stripe: ["STRIPE_SECRET_KEY"],
    paystack: ["PAYSTACK_SECRET_KEY"],
    tripay: ["TRIPAY_API_KEY", "TRIPAY_PRIVATE_KEY", "TRIPAY_MERCHANT_CODE"],
  };
  return needs[provider].filter((name) => !Deno.env.get(name));
}

function env(name: string): string {
  return Deno.env.get(name) ?? "";
}

function base(name: string, fallback: string): string {
  return (Deno.env.get(name) || fallback).replace(/\/$/, "");
}

async function call(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  } catch (e) {
    throw new ProviderError(`could not reach ${new URL(url).host}: ${(e as Error).name}`);
  }
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new ProviderError(`${new URL(url).host} answered ${response.status} with a body that is not JSON`);
  }
  if (!response.ok) {
    const error = body.error as Record<string, unknown> | undefined;
    const message = (error?.message ?? body.message ?? "") as string;
    throw new ProviderError(`${new URL(url).host} answered ${response.status}${message ? `: ${message}` : ""}`);
  }
  return body;
}

/** Stripe's form encoding of nested parameters (a[b][c]=v). */
export function stripeForm(params: Record<string, unknown>, prefix = "", out = new URLSearchParams()): URLSearchParams {
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    const name = prefix ? `${prefix}[${key}]` : key;
    if (typeof value === "object") stripeForm(value as Record<string, unknown>, name, out);
    else out.append(name, String(value));
  }
  return out;
}

async function stripe(c: Checkout): Promise<Started> {
  const subscription = c.planId !== null;
  const meta = { invoice_id: c.invoiceId, user_id: c.userId, plan_id: c.planId ?? undefined };
  const params: Record<string, unknown> = {
    mode: subscription ? "subscription" : "payment",
    client_reference_id: c.invoiceId,
    success_url: c.returnUrl,
    cancel_url: c.returnUrl,
    metadata: meta,
    line_items: {
      0: {
        quantity: 1,
        price_data: {
          currency: c.currency.toLowerCase(),
          unit_amount: c.amountMinor,
          product_data: { name: c.description },
          recurring: subscription ? { interval: c.period } : undefined,
        },
      },
    },
  };
  if (c.customer) params.customer = c.customer;
  else if (c.email) params.customer_email = c.email;
  // Renewals billed by Stripe carry the subscription's metadata: who and which plan (never
  // the first invoice's id, which each renewal would otherwise name).
  // A plan's trial (granted once per user, public.billing_trial_days) is Stripe's: the
  // subscription is 'trialing' until trial_end, then Stripe charges the first period.
  if (subscription) {
    params.subscription_data = {
      metadata: { user_id: c.userId, plan_id: c.planId },
      trial_period_days: c.trialDays > 0 ? c.trialDays : undefined,
    };
  }
  else params.payment_intent_data = { metadata: meta };
  const body = await call(`${base("STRIPE_API_URL", "https://api.stripe.com")}/v1/checkout/sessions`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env("STRIPE_SECRET_KEY")}`,
      "content-type": "application/x-www-form-urlencoded",
      "idempotency-key": `checkout-${c.invoiceId}`,
    },
    body: stripeForm(params).toString(),
  });
  if (typeof body.id !== "string" || typeof body.url !== "string") {
    throw new ProviderError("stripe returned no checkout session URL");
  }
  return { url: body.url, reference: body.id, refs: [body.id] };
}

async function paystack(c: Checkout): Promise<Started> {
  if (!c.email) throw new ProviderError("paystack needs the user's email address");
  const body = await call(`${base("PAYSTACK_API_URL", "https://api.paystack.co")}/transaction/initialize`, {
    method: "POST",
    headers: { authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "content-type": "application/json" },
    body: JSON.stringify({
      email: c.email,
      amount: String(c.amountMinor),
      currency: c.currency,
      reference: c.invoiceId,
      callback_url: c.returnUrl,
      metadata: { invoice_id: c.invoiceId, user_id: c.userId, plan_id: c.planId, credit_pack_id: c.creditPackId },
    }),
  });
  const data = body.data as Record<string, unknown> | undefined;
  if (body.status !== true || typeof data?.authorization_url !== "string") {
    throw new ProviderError("paystack returned no authorization URL");
  }
  const reference = typeof data.reference === "string" ? data.reference : c.invoiceId;
  return { url: data.authorization_url, reference, refs: [reference] };
}

async function tripay(c: Checkout): Promise<Started> {
  if (!c.channel) throw new ProviderError("tripay needs a payment channel");
  const merchant = env("TRIPAY_MERCHANT_CODE");
  const signature = Array.from(
    await hmacSha256(env("TRIPAY_PRIVATE_KEY"), merchant + c.invoiceId + String(c.amountMinor)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const body = await call(`${base("TRIPAY_API_URL", "https://tripay.co.id/api")}/transaction/create`, {
    method: "POST",
    headers: { authorization: `Bearer ${env("TRIPAY_API_KEY")}`, "content-type": "application/json" },
    body: JSON.stringify({
      method: c.channel,
      merchant_ref: c.invoiceId,
      amount: c.amountMinor,
      customer_name: c.email ?? c.userId,
      customer_email: c.email ?? "",
      order_items: [{ sku: c.planId ?? c.creditPackId, name: c.description, price: c.amountMinor, quantity: 1 }],
      return_url: c.returnUrl,
      expired_time: Math.floor(Date.now() / 1000) + 24 * 3600,
      signature,
    }),
  });
  const data = body.data as Record<string, unknown> | undefined;
  if (body.success !== true || typeof data?.checkout_url !== "string" || typeof data?.reference !== "string") {
    throw new ProviderError(`tripay refused the transaction${body.message ? `: ${body.message}` : ""}`);
  }
  return { url: data.checkout_url, reference: data.reference, refs: [data.reference] };
}

export function startPayment(provider: Provider, c: Checkout): Promise<Started> {
  return { stripe, paystack, tripay }[provider](c);
}

/** A Stripe billing portal session for a customer: its URL. */
export async function stripePortal(customer: string, returnUrl: string): Promise<string> {
  const body = await call(`${base("STRIPE_API_URL", "https://api.stripe.com")}/v1/billing_portal/sessions`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env("STRIPE_SECRET_KEY")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: stripeForm({ customer, return_url: returnUrl }).toString(),
  });
  if (typeof body.url !== "string") throw new ProviderError("stripe returned no portal URL");
  return body.url;
}
