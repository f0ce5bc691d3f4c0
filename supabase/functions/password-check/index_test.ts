// The range API is faked at the HTTP boundary with its real answer format: uppercase
// 35-character SHA-1 suffixes, "SUFFIX:COUNT" lines separated by CRLF, and padding
// entries with a count of 0 (what Add-Padding: true adds).
import { countIn, handler, sha1Hex } from "./index.ts";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

type Seen = { path: string; padding: string | null; body: string };

/** A fake range API that knows `breached` (password -> count) and pads every answer. */
async function fakeRange(breached: Record<string, number>, status = 200) {
  const seen: Seen[] = [];
  const hashes = await Promise.all(Object.entries(breached).map(async ([p, n]) => [await sha1Hex(p), n] as const));
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, padding: req.headers.get("add-padding"), body: await req.text() });
    if (status !== 200) return new Response("nope", { status });
    const prefix = path.split("/").pop()!;
    const lines = hashes.filter(([h]) => h.startsWith(prefix)).map(([h, n]) => `${h.slice(5)}:${n}`);
    for (let i = 0; i < 5; i++) {
      const pad = [...crypto.getRandomValues(new Uint8Array(18))].map((b) => b.toString(16).padStart(2, "0")).join("");
      lines.push(`${pad.slice(0, 35).toUpperCase()}:0`);
    }
    return new Response(lines.join("\r\n"), { headers: { "content-type": "text/plain" } });
  });
  Deno.env.set("PWNED_PASSWORDS_URL", `http://127.0.0.1:${server.addr.port}/range/`);
  return { seen, close: () => server.shutdown() };
}

function check(body: unknown): Promise<Response> {
  return handler(new Request("http://localhost/password-check", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }));
}

Deno.test("a breached password is found with only five hex characters of its hash sent", async () => {
  const fake = await fakeRange({ "P@ssw0rd": 52256, "hunter2": 17043 });
  try {
    const res = await check({ password: "P@ssw0rd" });
    assertEquals([res.status, await res.json()], [200, { pwned: true, count: 52256 }]);
    const hash = await sha1Hex("P@ssw0rd");
    assertEquals(fake.seen.length, 1);
    assertEquals(fake.seen[0].path, `/range/${hash.slice(0, 5)}`);
    assertEquals(fake.seen[0].padding, "true", "asks for padding");
    assertEquals(fake.seen[0].body, "", "sends no body");
    if (fake.seen[0].path.includes(hash.slice(5)) || fake.seen[0].path.includes("P@ss")) throw new Error("leaked");
  } finally {
    await fake.close();
  }
});

Deno.test("a password not in the range, or only among padding entries, is not pwned", async () => {
  const fake = await fakeRange({ "hunter2": 17043 });
  try {
    const res = await check({ password: "correct horse battery staple 9417" });
    assertEquals([res.status, await res.json()], [200, { pwned: false, count: 0 }]);
  } finally {
    await fake.close();
  }
  const hash = await sha1Hex("only-padding");
  assertEquals(countIn(`${hash.slice(5)}:0\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:3`, hash.slice(5)), 0, "a padding entry");
  assertEquals(countIn(`${hash.slice(5).toLowerCase()}:3\r\n`, hash.slice(5)), 3, "suffixes compare case-insensitively");
});

Deno.test("bad bodies get 400 naming the field; an unavailable range API gets 503", async () => {
  for (const body of [{}, { password: "" }, { password: 7 }, { password: "x".repeat(1025) }]) {
    const res = await check(body);
    assertEquals([res.status, (await res.json()).field], [400, "password"], JSON.stringify(body).slice(0, 40));
  }
  const notJson = await handler(new Request("http://localhost/", { method: "POST", body: "{" }));
  assertEquals(notJson.status, 400);
  await notJson.body?.cancel();
  assertEquals((await handler(new Request("http://localhost/"))).status, 405);
  const fake = await fakeRange({}, 503);
  try {
    const res = await check({ password: "anything" });
    assertEquals(res.status, 503);
    await res.body?.cancel();
  } finally {
    await fake.close();
  }
});
