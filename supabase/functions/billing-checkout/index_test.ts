// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// The providers are local fakes that check each request the way the provider documents it.
import { closeDb, db } from "../_shared/db.ts";
import { hmacSha256 } from "../_shared/hmac.ts";
import { SUPABASE_URL, userToken } from "../_shared/jwt_test_utils.ts";
import { handler } from "./index.ts";

const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters";
const TRIPAY_PRIVATE = "tripay-private-key-test";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

type Call = { path: string; headers: Headers; form: URLSearchParams | null; json: Record<string, unknown> | null };

async function hex(bytes: Promise<Uint8Array>): Promise<string> {
  return Array.from(await bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// One local server playing Stripe, Paystack and Tripay. `fail` makes the next call answer
// with the provider's error shape.
function fakeProviders(calls: Call[], state: { fail: boolean }) {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const form = req.headers.get("content-type")?.includes("form") ? new URLSearchParams(text) : null;
    const json = form ? null : JSON.parse(text || "{}");
    calls.push({ path: url.pathname, headers: req.headers, form, json });
    const auth = req.headers.get("authorization");
    if (url.pathname.startsWith("/stripe/")) {
      if (auth !== "Bearer sk_test_fake") return Response.json({ error: { message: "Invalid API Key" } }, { status: 401 });
      if (state.fail) return Response.json({ error: { message: "Your card was declined", type: "card_error" } }, { status: 402 });
      if (url.pathname === "/stripe/v1/checkout/sessions") {
        const id = `cs_test_${crypto.randomUUID().replaceAll("-", "")}`;
        return Response.json({ id, object: "checkout.session", url: `https://checkout.stripe.com/c/pay/${id}` });
      }
      if (url.pathname === "/stripe/v1/billing_portal/sessions") {
        return Response.json({ id: "bps_1", object: "billing_portal.session", url: "https://billing.stripe.com/p/session/test_1" });
      }
    }
    if (url.pathname === "/paystack/transaction/initialize") {
      if (auth !== "Bearer sk_test_paystack") return Response.json({ status: false, message: "Invalid key" }, { status: 401 });
      if (state.fail) return Response.json({ status: false, message: "Currency not supported by merchant" }, { status: 400 });
      return Response.json({
        status: true, message: "Authorization URL created",
        data: { authorization_url: `https://checkout.paystack.com/${json.reference}`, access_code: "ac_1", reference: json.reference },
      });
    }
    if (url.pathname === "/tripay/transaction/create") {
      const expected = await hex(hmacSha256(TRIPAY_PRIVATE, `T0001${json.merchant_ref}${json.amount}`));
      if (auth !== "Bearer tripay-api-key" || json.signature !== expected) {
        return Response.json({ success: false, message: "Invalid signature" }, { status: 400 });
      }
      if (state.fail) return Response.json({ success: false, message: "Payment channel is not enabled" }, { status: 400 });
      return Response.json({
        success: true, message: "",
        data: { reference: `T0001${Date.now()}`, merchant_ref: json.merchant_ref, checkout_url: `https://tripay.co.id/checkout/${json.merchant_ref}` },
      });
    }
    return Response.json({ error: "not found" }, { status: 404 });
  });
}

type World = { calls: Call[]; state: { fail: boolean }; plans: Record<string, string>; pack: string };

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const calls: Call[] = [];
  const state = { fail: false };
  const server = fakeProviders(calls, state);
  const base = `http://127.0.0.1:${server.addr.port}`;
  Deno.env.set("TRADEFLEET_JWT_SECRET", JWT_SECRET);
  Deno.env.set("SUPABASE_URL", SUPABASE_URL);
  Deno.env.set("STRIPE_SECRET_KEY", "sk_test_fake");
  Deno.env.set("STRIPE_API_URL", `${base}/stripe`);
  Deno.env.set("PAYSTACK_SECRET_KEY", "sk_test_paystack");
  Deno.env.set("PAYSTACK_API_URL", `${base}/paystack`);
  Deno.env.set("TRIPAY_API_KEY", "tripay-api-key");
  Deno.env.set("TRIPAY_PRIVATE_KEY", TRIPAY_PRIVATE);
  Deno.env.set("TRIPAY_MERCHANT_CODE", "T0001");
  Deno.env.set("TRIPAY_API_URL", `${base}/tripay`);
  const salt = crypto.randomUUID().slice(0, 8);
  const plans: Record<string, string> = {};
  for (const [key, price, yearly, currency, active] of [
    ["usd", 29, 290, "USD", true], ["ngn", 5000, null, "NGN", true], ["idr", 150000, null, "IDR", true],
    ["eur", 19, null, "EUR", true], ["retired", 9, null, "USD", false],
  ] as const) {
    const [row] = await db()`
      insert into public.plans (name, price_monthly, price_yearly, currency, max_bots, max_strategies, is_active, features)
      values (${`Checkout ${key} ${salt}`}, ${price}, ${yearly}, ${currency}, 5, 5, ${active}, '{"monthly_credits": 100}')
      returning id`;
    plans[key] = row.id;
  }
  const [pack] = await db()`
    insert into public.credit_packs (name, credits, price, currency) values (${`Pack ${salt}`}, 1000, 10, 'USD') returning id`;
  try {
    await fn({ calls, state, plans, pack: pack.id });
  } finally {
    await server.shutdown();
    await closeDb();
  }
}

async function newUser(): Promise<string> {
  const id = crypto.randomUUID();
  await db()`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
             values (${id}, 'authenticated', 'authenticated', ${id + "@test.local"}, now(), '{"role":"user"}', '{}', now(), now())`;
  return id;
}

async function call(user: string | null, body: unknown): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (user) headers.authorization = `Bearer ${await userToken(user, new TextEncoder().encode(JWT_SECRET))}`;
  return handler(new Request("http://localhost/billing-checkout", { method: "POST", headers, body: JSON.stringify(body) }));
}

async function invoices(user: string) {
  return await db()`select id, status, amount::text, currency, provider, checkout_url, provider_invoice_id, period,
                           plan_id, credit_pack_id, credits::text
                      from public.invoices where user_id = ${user} order by created_at`;
}

Deno.test("a Stripe checkout of a plan is a subscription session for the amount in the database, once per period", async () => {
  await withWorld(async ({ calls, plans }) => {
    const user = await newUser();
    const res = await call(user, { provider: "stripe", plan_id: plans.usd, amount: 1 });
    assertEquals(res.status, 201);
    const body = await res.json();
    assertEquals([body.provider, body.amount, body.currency, body.existing], ["stripe", "29.00", "USD", false]);
    if (!body.url.startsWith("https://checkout.stripe.com/c/pay/cs_test_")) throw new Error(`url ${body.url}`);
    const [sent] = calls;
    assertEquals(sent.path, "/stripe/v1/checkout/sessions");
    assertEquals(sent.headers.get("idempotency-key"), `checkout-${body.invoice_id}`);
    const f = sent.form!;
    assertEquals(
      [f.get("mode"), f.get("line_items[0][price_data][unit_amount]"), f.get("line_items[0][price_data][currency]"),
        f.get("line_items[0][price_data][recurring][interval]"), f.get("metadata[invoice_id]"),
        f.get("client_reference_id"), f.get("subscription_data[metadata][plan_id]"),
        f.get("subscription_data[metadata][user_id]"), f.get("subscription_data[metadata][invoice_id]"),
        f.get("customer_email")],
      ["subscription", "2900", "usd", "month", body.invoice_id, body.invoice_id, plans.usd, user, null, `${user}@test.local`],
    );
    const [inv] = await invoices(user);
    assertEquals([inv.id, inv.status, inv.amount, inv.provider, inv.checkout_url, inv.period],
      [body.invoice_id, "pending", "29.00", "stripe", body.url, "month"]);

    // The same item and period again: the same invoice and URL, no second session.
    const again = await call(user, { provider: "stripe", plan_id: plans.usd });
    assertEquals(again.status, 200);
    const second = await again.json();
    assertEquals([second.invoice_id, second.url, second.existing], [body.invoice_id, body.url, true]);
    assertEquals(calls.length, 1);

    // A year is another period: its own invoice at the yearly price.
    const year = await call(user, { provider: "stripe", plan_id: plans.usd, period: "year" });
    assertEquals([year.status, (await year.json()).amount], [201, "290.00"]);
    assertEquals(calls[1].form!.get("line_items[0][price_data][recurring][interval]"), "year");
    assertEquals((await invoices(user)).length, 2);
  });
});

Deno.test("a plan with trial days starts its Stripe subscription in trial, once per user", async () => {
  await withWorld(async ({ calls, plans }) => {
    await db()`update public.plans set trial_days = 14 where id = ${plans.usd}`;
    const user = await newUser();
    const res = await call(user, { provider: "stripe", plan_id: plans.usd });
    assertEquals(res.status, 201);
    assertEquals(calls[0].form!.get("subscription_data[trial_period_days]"), "14");
    // A plan without trial days has none.
    await db()`update public.plans set trial_days = 0 where id = ${plans.eur}`;
    await call(user, { provider: "stripe", plan_id: plans.eur });
    assertEquals(calls[1].form!.get("subscription_data[trial_period_days]"), null);

    // A user who had a trial already pays from the first day.
    const veteran = await newUser();
    await db()`insert into public.subscriptions (user_id, plan_id, status, started_at, expires_at, trial_ends_at)
               values (${veteran}, ${plans.usd}, 'expired', now() - interval '30 days', now() - interval '16 days',
                       now() - interval '16 days')`;
    assertEquals((await call(veteran, { provider: "stripe", plan_id: plans.usd })).status, 201);
    assertEquals(calls[2].form!.get("subscription_data[trial_period_days]"), null);
    assertEquals(calls[2].form!.get("mode"), "subscription");
  });
});

Deno.test("a credit pack is a one-off payment on Stripe and a Paystack transaction in subunits", async () => {
  await withWorld(async ({ calls, plans, pack }) => {
    const user = await newUser();
    const res = await call(user, { provider: "stripe", credit_pack_id: pack });
    assertEquals(res.status, 201);
    const body = await res.json();
    const f = calls[0].form!;
    assertEquals([f.get("mode"), f.get("line_items[0][price_data][unit_amount]"), f.get("payment_intent_data[metadata][invoice_id]"),
      f.get("line_items[0][price_data][recurring][interval]")], ["payment", "1000", body.invoice_id, null]);
    const [inv] = await invoices(user);
    assertEquals([inv.credit_pack_id, inv.credits, inv.plan_id], [pack, "1000.00000000", null]);

    const ps = await call(user, { provider: "paystack", plan_id: plans.ngn });
    assertEquals(ps.status, 201);
    const paystack = await ps.json();
    const sent = calls[1].json!;
    assertEquals([sent.amount, sent.currency, sent.reference, sent.email, (sent.metadata as Record<string, unknown>).invoice_id],
      ["500000", "NGN", paystack.invoice_id, `${user}@test.local`, paystack.invoice_id]);
    assertEquals(paystack.url, `https://checkout.paystack.com/${paystack.invoice_id}`);
  });
});

Deno.test("a Tripay checkout is a signed closed transaction for the chosen channel, in whole rupiah", async () => {
  await withWorld(async ({ calls, plans }) => {
    const user = await newUser();
    const res = await call(user, { provider: "tripay", plan_id: plans.idr, channel: "BRIVA" });
    assertEquals(res.status, 201);
    const body = await res.json();
    const sent = calls[0].json!;
    assertEquals([sent.method, sent.merchant_ref, sent.amount], ["BRIVA", body.invoice_id, 150000]);
    const [inv] = await invoices(user);
    if (!String(inv.provider_invoice_id).startsWith("T0001")) throw new Error("tripay reference not kept");
    assertEquals([inv.amount, inv.currency, inv.checkout_url], ["150000.00", "IDR", body.url]);
  });
});

Deno.test("bad checkouts are refused with a reason and leave no invoice", async () => {
  await withWorld(async ({ calls, plans, pack, state }) => {
    const user = await newUser();
    const free = (await db()`select id from public.plans where name = 'Free'`)[0].id;
    const cases: [unknown, number, RegExp][] = [
      [{ provider: "stripe", plan_id: crypto.randomUUID() }, 404, /no plan for sale/],
      [{ provider: "stripe", plan_id: plans.retired }, 404, /no plan for sale/],
      [{ provider: "stripe", credit_pack_id: crypto.randomUUID() }, 404, /no credit pack for sale/],
      [{ provider: "stripe", plan_id: free }, 400, /not sold/],
      [{ provider: "stripe", plan_id: plans.ngn, period: "year" }, 400, /not sold for a year/],
      [{ provider: "stripe", plan_id: "1; drop table plans" }, 400, /plan_id must be a UUID/],
      [{ provider: "stripe", plan_id: plans.usd, credit_pack_id: pack }, 400, /either plan_id or credit_pack_id/],
      [{ provider: "stripe" }, 400, /either plan_id or credit_pack_id/],
      [{ provider: "stripe", credit_pack_id: pack, period: "month" }, 400, /no period/],
      [{ provider: "stripe", plan_id: plans.usd, period: "week" }, 400, /period must be/],
      [{ provider: "paypal", plan_id: plans.usd }, 400, /provider must be one of/],
      [{ provider: "tripay", plan_id: plans.usd, channel: "BRIVA" }, 400, /tripay does not take USD/],
      [{ provider: "paystack", plan_id: plans.eur }, 400, /paystack does not take EUR/],
      [{ provider: "tripay", plan_id: plans.idr }, 400, /channel must name/],
      [{ provider: "stripe", plan_id: plans.usd, channel: "BRIVA" }, 400, /only for tripay/],
      [{ action: "refund" }, 400, /action must be portal/],
    ];
    for (const [body, status, error] of cases) {
      const res = await call(user, body);
      const answer = await res.json();
      assertEquals(res.status, status, JSON.stringify(body));
      if (!error.test(answer.error)) throw new Error(`${JSON.stringify(body)}: ${answer.error}`);
    }
    assertEquals((await call(null, { provider: "stripe", plan_id: plans.usd })).status, 401);

    // Paystack charges an email address: a user without one is told so.
    const phoneOnly = crypto.randomUUID();
    await db()`insert into auth.users (id, aud, role, phone, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
               values (${phoneOnly}, 'authenticated', 'authenticated', ${"+234" + String(Date.now()).slice(-10)},
                       '{"role":"user"}', '{}', now(), now())`;
    const noEmail = await call(phoneOnly, { provider: "paystack", plan_id: plans.ngn });
    assertEquals([noEmail.status, (await noEmail.json()).error], [400, "paystack needs an email address on your profile"]);
    assertEquals((await invoices(phoneOnly)).length, 0);

    // A provider without its secrets is not configured: refused before anything is written.
    Deno.env.delete("TRIPAY_MERCHANT_CODE");
    const unconfigured = await call(user, { provider: "tripay", plan_id: plans.idr, channel: "QRIS" });
    assertEquals([unconfigured.status, (await unconfigured.json()).error],
      [400, "tripay is not configured (TRIPAY_MERCHANT_CODE unset)"]);

    // The provider refuses: the invoice opened for it is removed again.
    state.fail = true;
    const refused = await call(user, { provider: "stripe", plan_id: plans.usd });
    assertEquals([refused.status, /declined/.test((await refused.json()).error)], [502, true]);
    const ps = await call(user, { provider: "paystack", plan_id: plans.ngn });
    assertEquals([ps.status, /Currency not supported/.test((await ps.json()).error)], [502, true]);
    assertEquals(calls.length, 2);
    assertEquals((await invoices(user)).length, 0);

    // And the same checkout works once the provider takes it.
    state.fail = false;
    assertEquals((await call(user, { provider: "stripe", plan_id: plans.usd })).status, 201);
    assertEquals((await invoices(user)).map((i) => i.status), ["pending"]);
  });
});

Deno.test("the billing portal link is for the user's Stripe customer", async () => {
  await withWorld(async ({ calls }) => {
    const user = await newUser();
    const none = await call(user, { action: "portal" });
    assertEquals([none.status, /no Stripe customer/.test((await none.json()).error)], [404, true]);
    await db()`select public.billing_save_payment_method(${user}, 'stripe', 'cus_test_1')`;
    const res = await call(user, { action: "portal" });
    assertEquals([res.status, (await res.json()).url], [200, "https://billing.stripe.com/p/session/test_1"]);
    assertEquals([calls[0].path, calls[0].form!.get("customer")], ["/stripe/v1/billing_portal/sessions", "cus_test_1"]);
  });
});
