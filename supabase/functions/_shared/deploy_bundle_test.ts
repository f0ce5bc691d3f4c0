// Each function type-checks from exactly what `supabase functions deploy` uploads.
//
// The Supabase CLI (internal/functions/deploy, pkg/function/deploy.go and deno.go) uploads
// per function: the import map it picked — the --import-map flag, else `import_map` in
// config.toml, else functions/<name>/deno.json, deno.jsonc, import_map.json, else the
// fallback functions/import_map.json — plus the entrypoint and every file reached from it
// by relative import specifiers (after import-map substitution), found with the regular
// expression below. Nothing else: not supabase/functions/deno.json, not a lock file. This
// test copies that file set into an empty folder and runs `deno check` there.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { parse as parseToml } from "npm:smol-toml@1.4.2";

const SUPABASE = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const PROJECT = dirname(SUPABASE);
const DENO = Deno.execPath();

// The CLI's importPathPattern (pkg/function/deno.go), in JavaScript syntax.
const IMPORT_PATH = /(?:import|export)\s+(?:type\s+)?(?:{[^{}]+}|.*?)\s*(?:from)?\s*['"](.*?)['"]|import\(\s*['"](.*?)['"]\)/gi;
const SLUG = /^[A-Za-z][A-Za-z0-9_-]*$/;

type FunctionConfig = { entrypoint?: string; import_map?: string };

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Slugs as the CLI finds them: functions/*\/index.ts with a valid name, and [functions.*] in config.toml. */
async function functionSlugs(config: Record<string, FunctionConfig>): Promise<string[]> {
  const slugs = new Set(Object.keys(config));
  for await (const entry of Deno.readDir(join(SUPABASE, "functions"))) {
    if (entry.isDirectory && SLUG.test(entry.name) && await exists(join(SUPABASE, "functions", entry.name, "index.ts"))) {
      slugs.add(entry.name);
    }
  }
  return [...slugs].sort();
}

/** The import map the CLI would upload for `slug` (a path relative to the project), or null. */
async function importMapFor(slug: string, fc: FunctionConfig): Promise<string | null> {
  if (fc.import_map) return relative(PROJECT, join(SUPABASE, fc.import_map));
  for (const candidate of [`functions/${slug}/deno.json`, `functions/${slug}/deno.jsonc`, `functions/${slug}/import_map.json`,
                           "functions/import_map.json"]) {
    if (await exists(join(SUPABASE, candidate))) return relative(PROJECT, join(SUPABASE, candidate));
  }
  return null;
}

/** The files the CLI uploads for one function, relative to the project root. */
async function bundleFiles(entrypoint: string, importMap: string | null): Promise<string[]> {
  const files = new Set<string>();
  const imports: Record<string, string> = {};
  if (importMap) {
    files.add(importMap);
    // JSONC comments are not expected here; a deno.json that only names an importMap points to it.
    let map = JSON.parse(await Deno.readTextFile(join(PROJECT, importMap)));
    let mapPath = importMap;
    if (/deno\.jsonc?$/i.test(importMap) && !map.imports && !map.scopes && map.importMap) {
      mapPath = normalize(join(dirname(importMap), map.importMap));
      files.add(mapPath);
      map = JSON.parse(await Deno.readTextFile(join(PROJECT, mapPath)));
    }
    for (const [k, v] of Object.entries((map.imports ?? {}) as Record<string, string>)) {
      imports[k] = /^[a-z][a-z0-9+.-]*:/i.test(v) || v.startsWith("/") ? v : "./" + normalize(join(dirname(mapPath), v)) +
        (v.endsWith("/") ? "/" : "");
    }
  }
  const queue = [entrypoint];
  const seen = new Set<string>();
  while (queue.length) {
    const current = queue.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    let text: string;
    try {
      text = await Deno.readTextFile(join(PROJECT, current));
    } catch {
      continue; // the CLI warns and goes on; the check below then fails on the missing module
    }
    files.add(current);
    for (const match of text.matchAll(IMPORT_PATH)) {
      let mod = (match[1] || match[2] || "").trim();
      let substituted = false;
      for (const [k, v] of Object.entries(imports)) {
        if (mod.startsWith(k)) {
          mod = v + mod.slice(k.length);
          substituted = true;
        }
      }
      if (!/\.[^./]+$/.test(mod)) continue; // URLs without an extension, bare names, directories
      const rel = mod.startsWith("./") || mod.startsWith("../");
      if (!rel && !mod.startsWith("/")) continue;
      queue.push(rel && !substituted ? normalize(join(dirname(current), mod)) : normalize(mod));
    }
  }
  return [...files].sort();
}

async function checkBundle(slug: string, fc: FunctionConfig): Promise<{ files: string[]; ok: boolean; output: string }> {
  const entrypoint = relative(PROJECT, fc.entrypoint ? join(SUPABASE, fc.entrypoint) : join(SUPABASE, "functions", slug, "index.ts"));
  const importMap = await importMapFor(slug, fc);
  const files = await bundleFiles(entrypoint, importMap);
  const dir = await Deno.makeTempDir({ prefix: `bundle-${slug}-` });
  try {
    for (const file of files) {
      await Deno.mkdir(join(dir, dirname(file)), { recursive: true });
      await Deno.copyFile(join(PROJECT, file), join(dir, file));
    }
    const mapArgs = !importMap
      ? ["--no-config"]
      : /deno\.jsonc?$/i.test(importMap)
      ? ["--config", importMap]
      : ["--no-config", "--import-map", importMap];
    const out = await new Deno.Command(DENO, {
      args: ["check", "--quiet", ...mapArgs, entrypoint],
      cwd: dir,
      env: { DENO_NO_PACKAGE_JSON: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { files, ok: out.success, output: decode(out.stdout) + decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const config = parseToml(await Deno.readTextFile(join(SUPABASE, "config.toml"))) as { functions?: Record<string, FunctionConfig> };
const functions = config.functions ?? {};

Deno.test("the bundle file set follows relative imports from the entrypoint, as the CLI collects it", async () => {
  const files = await bundleFiles("supabase/functions/stripe-webhook/index.ts", null);
  assertEquals(files.includes("supabase/functions/_shared/signatures.ts"), true);
  assertEquals(files.includes("supabase/functions/_shared/db.ts"), true); // through webhook_inbox.ts
  assertEquals(files.some((f) => f.endsWith("_test.ts") || f.endsWith("deno.json")), false);
});

for (const slug of await functionSlugs(functions)) {
  Deno.test(`${slug} type-checks from exactly the files \`supabase functions deploy\` uploads`, async () => {
    const result = await checkBundle(slug, functions[slug] ?? {});
    if (!result.ok) throw new Error(`deno check of the ${slug} bundle (${result.files.join(", ")}) failed:\n${result.output}`);
  });
}
