// Requests from signed-in app users: who is calling (their Supabase JWT), and their JSON
// body, held to the same limits as webhook bodies (size, UTF-8, JSON Postgres can store).
import { decodeUtf8, MAX_BODY_BYTES, readBody, reply } from "./http.ts";
import { isRecord, parseStorableJson } from "./json_body.ts";
import { JwtConfigError, JwtError, verifyUserRequest } from "./jwt.ts";

/** The calling user's id, or the 401 (bad token) / 500 / 503 (server side) reply. */
export async function userId(req: Request): Promise<string | Response> {
  try {
    return (await verifyUserRequest(req)).sub as string;
  } catch (e) {
    if (e instanceof JwtError) return reply(401, { error: e.message });
    if (e instanceof JwtConfigError) return reply(e.status, { error: `cannot verify tokens: ${e.message}` });
    throw e;
  }
}

/** The body as a JSON object (`{}` for an empty optional body), or the 4xx reply. */
export async function readUserBody(
  req: Request,
  { optional = false } = {},
): Promise<Record<string, unknown> | Response> {
  const bytes = await readBody(req);
  if (bytes === null) return reply(413, { error: `body is larger than ${MAX_BODY_BYTES} bytes` });
  const text = decodeUtf8(bytes);
  if (text === null) return reply(400, { error: "body is not valid UTF-8" });
  if (optional && !text.trim()) return {};
  const parsed = parseStorableJson(text);
  if (!parsed.ok) return reply(400, { error: parsed.error });
  if (!isRecord(parsed.value)) return reply(400, { error: "body must be a JSON object" });
  return parsed.value;
}
