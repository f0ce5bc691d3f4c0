// The database connection Edge Functions get: SUPABASE_DB_URL (as on Supabase).
import postgres from "npm:postgres@3.4.5";

let sql: ReturnType<typeof postgres> | undefined;

export function db(): ReturnType<typeof postgres> {
  if (!sql) {
    const url = Deno.env.get("SUPABASE_DB_URL");
    if (!url) throw new Error("SUPABASE_DB_URL is not set");
    sql = postgres(url, { max: 5, idle_timeout: 20, prepare: false, onnotice: () => {} });
  }
  return sql;
}

export async function closeDb(): Promise<void> {
  if (sql) {
    await sql.end({ timeout: 5 });
    sql = undefined;
  }
}
