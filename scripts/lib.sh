# Shared by the scripts in this folder: paths, the private PostgreSQL cluster and the venv.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
export PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
PGPORT="${TRADEFLEET_PG_PORT:-54322}"
PGDATABASE_NAME="postgres"
VENV="$ROOT/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The cluster lives in .local/pg. A root user runs it as the 'postgres' system user, who
# may not be allowed into the checkout (a clone inside a private folder such as one made by
# mktemp): then the cluster lives in /var/tmp/tradefleet-pg/<checkout's hash> instead.
PGHOME="$LOCAL/pg"
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 \
   && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
  PGHOME="/var/tmp/tradefleet-pg/$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
fi
PGDATA="$PGHOME/data"
PGRUN="$PGHOME/run"
export TRADEFLEET_PG_HOME="$PGHOME"

# The cluster cannot run as root; a root user runs it as the 'postgres' system user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_debs() {
  local missing=()
  [ -x "$PGBIN/pg_ctl" ] || missing+=(postgresql-15)
  [ -f /usr/share/postgresql/15/extension/pgtap.control ] || missing+=(postgresql-15-pgtap)
  # plpgsql_check: what `supabase db lint` runs (tests/integration/test_supabase_cli.py)
  [ -f /usr/share/postgresql/15/extension/plpgsql_check.control ] || missing+=(postgresql-15-plpgsql-check)
  command -v pg_prove >/dev/null 2>&1 || missing+=(libtap-parser-sourcehandler-pgtap-perl)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)
  # the browser the report tests drive (headless, through chromedriver)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "missing Debian packages. Install them with: sudo apt-get install -y ${missing[*]}"
  fi
}

# ensure_venv [EXTRAS]: the virtualenv with the package and the given extras (default: dev).
ensure_venv() {
  local extras="${1:-dev}"
  local stamp="$VENV/.installed-${extras//,/-}"
  if [ ! -x "$VENV/bin/python" ]; then
    command -v python3 >/dev/null || die "python3 (>= 3.11) is required"
    say "creating virtualenv .venv"
    python3 -m venv "$VENV" || die "python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)"
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing Python packages into .venv ($extras)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -U pip >/dev/null
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[$extras]" >/dev/null
    touch "$stamp"
  fi
}

# Deno and the Supabase CLI, pinned in package.json, installed from npm into node_modules.
ensure_deno() {
  if [ ! -x "$ROOT/node_modules/.bin/deno" ] || [ ! -x "$ROOT/node_modules/.bin/supabase" ] \
     || [ "$ROOT/package.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || die "npm is required to install Deno and the Supabase CLI (apt-get install -y npm)"
    say "installing Deno and the Supabase CLI from npm"
    (cd "$ROOT" && npm install --no-audit --no-fund --silent >/dev/null) \
      || die "npm install failed: Deno and the Supabase CLI come from the npm registry"
  fi
  DENO="$ROOT/node_modules/.bin/deno"
  SUPABASE_CLI="$ROOT/node_modules/.bin/supabase"
  export DENO SUPABASE_CLI
}

db_url() { printf 'postgresql://postgres@127.0.0.1:%s/%s' "$PGPORT" "${1:-$PGDATABASE_NAME}"; }

# fsync of the local cluster: off while scripts/test runs (its databases are thrown away: a
# killed server or an immediate restart still loses nothing committed, only a crash of the
# machine would), back on for the benchmarks, which measure durable commits.
pg_fsync() {  # pg_fsync on|off
  local stmt="alter system reset fsync"
  [ "$1" = off ] && stmt="alter system set fsync = off"
  psql_db postgres -c "$stmt" -c "select pg_reload_conf()" >/dev/null
}

psql_db() {
  local db="$1"; shift
  PGOPTIONS="--client-min-messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$(db_url "$db")" "$@"
}
