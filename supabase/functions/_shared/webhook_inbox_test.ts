// storeEvent when two first deliveries of one event race: exactly one is stored, and the
// other is answered as the duplicate of it, with its id (never an error).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import postgres from "npm:postgres@3.4.5";
import { storeEvent } from "./webhook_inbox.ts";
import { done, inbox, t } from "./webhook_test_utils.ts";

t("a delivery racing the first one's commit is answered as its duplicate", async () => {
  const eventId = `evt_race_${crypto.randomUUID()}`;
  const url = Deno.env.get("SUPABASE_DB_URL")!;
  const other = postgres(url, { max: 1, prepare: false, onnotice: () => {} });
  const watch = postgres(url, { max: 1, prepare: false, onnotice: () => {} });
  try {
    let second: Promise<{ id: string; duplicate: boolean }> | undefined;
    const firstId = await other.begin(async (tx) => {
      const [row] = await tx<{ id: string }[]>`
        insert into public.webhook_events (provider, event_id, event_type, payload)
        values ('stripe', ${eventId}, 'invoice.paid', '{}'::jsonb) returning id`;
      // The second delivery starts while the first is not committed: it waits on the key.
      second = storeEvent("stripe", eventId, "invoice.paid", "{}", null);
      for (let waited = 0;; waited += 20) {
        const waiting = await watch`
          select 1 from pg_stat_activity
           where wait_event_type = 'Lock' and datname = current_database() and query like '%webhook_events%'`;
        if (waiting.length) break;
        if (waited > 10_000) throw new Error("the second delivery never waited on the first's key");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return row.id;
    });
    assertEquals(await second, { id: firstId, duplicate: true });
    assertEquals((await inbox("stripe", eventId)).rows, 1);
  } finally {
    await watch.end({ timeout: 5 });
    await other.end({ timeout: 5 });
  }
});

done();
