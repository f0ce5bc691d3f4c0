// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// Stripe and Paystack are one local fake that checks each request the way the provider
// documents it and answers with the provider's shapes (errors included).
import { closeDb, db } from "../_shared/db.ts";
import { SUPABASE_URL, userToken } from "../_shared/jwt_test_utils.ts";
import { handler } from "./index.ts";

const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters";
const GOOD_ACCOUNT = "0123456789";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

type Call = { method: string; path: string; query: URLSearchParams; headers: Headers; form: URLSearchParams | null; json: Record<string, unknown> | null };
type State = { down: boolean; recipientRefused: boolean };

function fakeProviders(calls: Call[], state: State) {
  let accounts = 0;
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const form = req.headers.get("content-type")?.includes("form") ? new URLSearchParams(text) : null;
    const json = form || !text ? null : JSON.parse(text);
    calls.push({ method: req.method, path: url.pathname, query: url.searchParams, headers: req.headers, form, json });
    if (state.down) return Response.json({ error: { message: "upstream error" } }, { status: 503 });
    const auth = req.headers.get("authorization");
    if (url.pathname.startsWith("/stripe/")) {
      if (auth !== "Bearer sk_test_fake") return Response.json({ error: { message: "Invalid API Key" } }, { status: 401 });
      if (url.pathname === "/stripe/v1/accounts" && req.method === "POST") {
        accounts += 1;
        return Response.json({ id: `acct_test_${accounts}`, object: "account", type: "express" });
      }
      if (url.pathname === "/stripe/v1/account_links" && req.method === "POST") {
        return Response.json({
          object: "account_link", expires_at: 1_900_000_000,
          url: `https://connect.stripe.com/setup/e/${form!.get("account")}/abc`,
        });
      }
    }
    if (url.pathname.startsWith("/paystack/")) {
      if (auth !== "Bearer sk_test_paystack") return Response.json({ status: false, message: "Invalid key" }, { status: 401 });
      if (url.pathname === "/paystack/bank/resolve" && req.method === "GET") {
        if (url.searchParams.get("account_number") !== GOOD_ACCOUNT || url.searchParams.get("bank_code") !== "058") {
          return Response.json({ status: false, message: "Could not resolve account name. Check parameters or try again." }, {
            status: 422,
          });
        }
        return Response.json({ status: true, message: "Account number resolved", data: { account_number: GOOD_ACCOUNT, account_name: "PAT PROVIDER", bank_id: 9 } });
      }
      if (url.pathname === "/paystack/transferrecipient" && req.method === "POST") {
        if (state.recipientRefused) return Response.json({ status: false, message: "Account details are invalid" }, { status: 400 });
        return Response.json({
          status: true, message: "Transfer recipient created successfully",
          data: { active: true, currency: json.currency, name: json.name, recipient_code: "RCP_test_1", type: "nuban" },
        });
      }
    }
    return Response.json({ error: "not found" }, { status: 404 });
  });
}

type World = { calls: Call[]; state: State };

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const calls: Call[] = [];
  const state = { down: false, recipientRefused: false };
  const server = fakeProviders(calls, state);
  const base = `http://127.0.0.1:${server.addr.port}`;
  Deno.env.set("TRADEFLEET_JWT_SECRET", JWT_SECRET);
  Deno.env.set("SUPABASE_URL", SUPABASE_URL);
  Deno.env.set("STRIPE_SECRET_KEY", "sk_test_fake");
  Deno.env.set("STRIPE_API_URL", `${base}/stripe`);
  Deno.env.set("PAYSTACK_SECRET_KEY", "sk_test_paystack");
  Deno.env.set("PAYSTACK_API_URL", `${base}/paystack`);
  Deno.env.set("BILLING_CONNECT_RETURN_URL", "https://app.test/payouts?connected=1");
  Deno.env.set("BILLING_CONNECT_REFRESH_URL", "https://app.test/payouts?refresh=1");
  try {
    await fn({ calls, state });
  } finally {
    await server.shutdown();
    await closeDb();
  }
}

async function newUser(role: "user" | "provider" = "provider"): Promise<string> {
  const id = crypto.randomUUID();
  await db()`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
             values (${id}, 'authenticated', 'authenticated', ${id + "@test.local"}, now(), ${db().json({ role })}, '{}', now(), now())`;
  return id;
}

async function call(user: string | null, body: unknown): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (user) headers.authorization = `Bearer ${await userToken(user, new TextEncoder().encode(JWT_SECRET))}`;
  return handler(new Request("http://localhost/payouts-connect", { method: "POST", headers, body: JSON.stringify(body) }));
}

async function destinations(user: string) {
  return await db()`select provider, status, currency, stripe_account_id, onboarding_url, paystack_recipient_code,
                           bank_code, account_last4, account_name
                      from public.payout_destinations where user_id = ${user}`;
}

Deno.test("a provider connects Stripe: an Express account and its onboarding link, the account kept", async () => {
  await withWorld(async ({ calls }) => {
    const pat = await newUser();
    const res = await call(pat, { provider: "stripe", currency: "usd" });
    assertEquals(res.status, 201);
    assertEquals(await res.json(), {
      provider: "stripe", status: "pending", currency: "USD",
      onboarding_url: "https://connect.stripe.com/setup/e/acct_test_1/abc",
    });
    const [account, link] = calls;
    assertEquals([account.method, account.path, account.headers.get("idempotency-key")],
      ["POST", "/stripe/v1/accounts", `connect-account-user-${pat}`]);
    assertEquals([account.form!.get("type"), account.form!.get("default_currency"),
      account.form!.get("capabilities[transfers][requested]"), account.form!.get("metadata[user_id]")],
      ["express", "usd", "true", pat]);
    assertEquals([link.path, link.form!.get("account"), link.form!.get("type"), link.form!.get("return_url"),
      link.form!.get("refresh_url")],
      ["/stripe/v1/account_links", "acct_test_1", "account_onboarding", "https://app.test/payouts?connected=1",
        "https://app.test/payouts?refresh=1"]);
    const [row] = await destinations(pat);
    assertEquals([row.provider, row.status, row.stripe_account_id, row.onboarding_url],
      ["stripe", "pending", "acct_test_1", "https://connect.stripe.com/setup/e/acct_test_1/abc"]);

    // Asking again (the link expired): a new link for the same account, no second account.
    assertEquals((await call(pat, { provider: "stripe" })).status, 201);
    assertEquals(calls.map((c) => c.path).slice(2), ["/stripe/v1/account_links"]);
    assertEquals(calls[2].form!.get("account"), "acct_test_1");
  });
});

Deno.test("a provider connects Paystack: the bank details resolved, then a transfer recipient", async () => {
  await withWorld(async ({ calls }) => {
    const pat = await newUser();
    const res = await call(pat, { provider: "paystack", bank_code: "058", account_number: GOOD_ACCOUNT });
    assertEquals(res.status, 201);
    assertEquals(await res.json(), {
      provider: "paystack", status: "ready", currency: "NGN", account_name: "PAT PROVIDER", account_last4: "6789",
    });
    const [resolve, recipient] = calls;
    assertEquals([resolve.method, resolve.path, resolve.query.get("account_number"), resolve.query.get("bank_code")],
      ["GET", "/paystack/bank/resolve", GOOD_ACCOUNT, "058"]);
    assertEquals([recipient.path, recipient.json], ["/paystack/transferrecipient", {
      type: "nuban", name: "PAT PROVIDER", account_number: GOOD_ACCOUNT, bank_code: "058", currency: "NGN",
    }]);
    const [row] = await destinations(pat);
    assertEquals([row.status, row.paystack_recipient_code, row.bank_code, row.account_last4, row.account_name],
      ["ready", "RCP_test_1", "058", "6789", "PAT PROVIDER"]);
  });
});

Deno.test("bank details Paystack rejects are a 422 and leave the destination as it was", async () => {
  await withWorld(async ({ calls, state }) => {
    const pat = await newUser();
    const bad = await call(pat, { provider: "paystack", bank_code: "058", account_number: "9999999999" });
    assertEquals(bad.status, 422);
    assertEquals((await bad.json()).error, "paystack: Could not resolve account name. Check parameters or try again.");
    assertEquals((await destinations(pat)).length, 0);
    assertEquals(calls.map((c) => c.path), ["/paystack/bank/resolve"]);

    // Resolved but refused as a recipient: nothing either.
    state.recipientRefused = true;
    const refused = await call(pat, { provider: "paystack", bank_code: "058", account_number: GOOD_ACCOUNT });
    assertEquals([refused.status, (await refused.json()).error], [422, "paystack: Account details are invalid"]);
    assertEquals((await destinations(pat)).length, 0);

    // A working destination is not replaced by one Paystack rejects.
    state.recipientRefused = false;
    assertEquals((await call(pat, { provider: "paystack", bank_code: "058", account_number: GOOD_ACCOUNT })).status, 201);
    assertEquals((await call(pat, { provider: "paystack", bank_code: "011", account_number: GOOD_ACCOUNT })).status, 422);
    const [row] = await destinations(pat);
    assertEquals([row.status, row.bank_code], ["ready", "058"]);
  });
});

Deno.test("refusals: bad input, not a provider, a payout on its way, a provider down", async () => {
  await withWorld(async ({ calls, state }) => {
    const pat = await newUser();
    for (
      const body of [
        {}, { provider: "tripay" }, { provider: "paystack", bank_code: "058" },
        { provider: "paystack", bank_code: "058", account_number: "12ab" },
        { provider: "stripe", account_number: GOOD_ACCOUNT }, { provider: "stripe", currency: "dollars" },
      ]
    ) {
      assertEquals((await call(pat, body)).status, 400, JSON.stringify(body));
    }
    assertEquals((await call(null, { provider: "stripe" })).status, 401);
    const alice = await newUser("user");
    const notProvider = await call(alice, { provider: "stripe" });
    assertEquals([notProvider.status, (await notProvider.json()).error], [403, "only providers connect a payout destination"]);
    assertEquals(calls.length, 0);

    // A payout on its way keeps its destination: 409 before any provider call.
    assertEquals((await call(pat, { provider: "paystack", bank_code: "058", account_number: GOOD_ACCOUNT })).status, 201);
    await db()`insert into public.payouts (id, user_id, destination_id, hold_id, amount)
               select gen_random_uuid(), ${pat}, d.id, gen_random_uuid(), 60 from public.payout_destinations d
                where d.user_id = ${pat}`;
    const before = calls.length;
    const inFlight = await call(pat, { provider: "stripe" });
    assertEquals([inFlight.status, (await inFlight.json()).code], [409, "payout_destinations_no_payout_in_flight"]);
    assertEquals(calls.length, before);

    // The provider down: 502, and nothing written.
    const other = await newUser();
    state.down = true;
    assertEquals((await call(other, { provider: "stripe" })).status, 502);
    assertEquals((await destinations(other)).length, 0);

    // Not configured: 400 naming the secret.
    state.down = false;
    Deno.env.delete("PAYSTACK_SECRET_KEY");
    const unset = await call(other, { provider: "paystack", bank_code: "058", account_number: GOOD_ACCOUNT });
    assertEquals([unset.status, (await unset.json()).error], [400, "paystack is not configured (PAYSTACK_SECRET_KEY unset)"]);
  });
});
