// AES-256-GCM envelopes, byte-compatible with worker/sealing/keyring.py:
//   v1:<key_id>:<base64 nonce>:<base64 ciphertext||tag>, AAD = key id.
// Keys come from TRADEFLEET_MASTER_KEYS="kid1:<base64 32 bytes>,kid2:..." (first seals).
import { base64Decode, base64Encode, type Bytes } from "./hmac.ts";

const enc = new TextEncoder();

/** TRADEFLEET_MASTER_KEYS is missing or malformed: the operator's to fix (500). */
export class SealConfigError extends Error {}
const dec = new TextDecoder();

function keyring(spec = Deno.env.get("TRADEFLEET_MASTER_KEYS") ?? ""): Map<string, Bytes> {
  const keys = new Map<string, Bytes>();
  for (const item of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = item.indexOf(":");
    if (at < 1) throw new SealConfigError("TRADEFLEET_MASTER_KEYS entries must look like '<key_id>:<base64 key>'");
    let raw: Bytes;
    try {
      raw = base64Decode(item.slice(at + 1).trim());
    } catch {
      throw new SealConfigError(`master key ${item.slice(0, at)} in TRADEFLEET_MASTER_KEYS is not base64`);
    }
    if (raw.length !== 32) throw new SealConfigError(`master key ${item.slice(0, at)} must be 32 bytes`);
    keys.set(item.slice(0, at).trim(), raw);
  }
  if (keys.size === 0) throw new SealConfigError("TRADEFLEET_MASTER_KEYS is not set");
  return keys;
}

async function aes(raw: Bytes, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", raw, "AES-GCM", false, [usage]);
}

export async function seal(plaintext: string): Promise<string> {
  const [keyId, raw] = keyring().entries().next().value as [string, Bytes];
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: enc.encode(keyId) }, await aes(raw, "encrypt"), enc.encode(plaintext),
  ));
  return `v1:${keyId}:${base64Encode(iv)}:${base64Encode(ct)}`;
}

export async function open(sealed: string): Promise<string> {
  const parts = sealed.trim().split(":");
  if (parts.length !== 4 || parts[0] !== "v1") throw new Error("not a sealed value");
  const raw = keyring().get(parts[1]);
  if (!raw) throw new SealConfigError(`sealed with master key ${parts[1]}, which TRADEFLEET_MASTER_KEYS does not hold`);
  const pt = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: base64Decode(parts[2]), additionalData: enc.encode(parts[1]) },
    await aes(raw, "decrypt"), base64Decode(parts[3]),
  );
  return dec.decode(pt);
}
