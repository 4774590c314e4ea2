# Shared by scripts/run.sh and scripts/test.sh: virtualenv, system packages, PostgreSQL.
# Sourced, not run. Everything here is idempotent and works on a fresh Debian machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
VAR="$ROOT/var"
PRIVATE_PG_PORT="${PRIVATE_PG_PORT:-54329}"
mkdir -p "$VAR"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    # apt_install PKG...: install the Debian packages that are missing (needs root).
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]} (run as root, or install them first)"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    if [ ! -f "$VAR/.apt-updated" ] || [ -n "$(find "$VAR/.apt-updated" -mmin +600 2>/dev/null)" ]; then
        apt-get update -qq && touch "$VAR/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# WeasyPrint renders invoices with Pango; fonts so PDFs have glyphs.
WEASYPRINT_DEBS=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)

ensure_venv() {
    # ensure_venv REQUIREMENTS_FILE
    local req="$1"
    if ! command -v python3 >/dev/null; then apt_install python3; fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv $VENV"
        python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
    fi
    local stamp="$VENV/.installed-$(basename "$req")"
    if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ "$ROOT/requirements.txt" -nt "$stamp" ]; then
        log "installing Python packages from $(basename "$req")"
        "$VENV/bin/pip" install -q --upgrade pip >/dev/null
        "$VENV/bin/pip" install -q -r "$req"
        touch "$stamp"
    fi
}

pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -n "$dir" ] && echo "$dir"
}

start_private_cluster() {
    # A cluster of our own under ./var/pg, owned by the postgres system user.
    local bin data="$VAR/pg"
    bin="$(pg_bin)" || true
    if [ -z "$bin" ]; then apt_install postgresql; bin="$(pg_bin)"; fi
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$data" postgres
        as=(runuser -u postgres --)
        chmod o+x "$ROOT" "$VAR" 2>/dev/null || true
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
        "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$PRIVATE_PG_PORT"; then
        log "starting the private cluster on 127.0.0.1:$PRIVATE_PG_PORT"
        "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
            -o "-p $PRIVATE_PG_PORT -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null
    fi
    echo "postgresql://postgres@127.0.0.1:$PRIVATE_PG_PORT"
}

find_postgres_server() {
    # Prints a libpq URL of a reachable server (its database part is chosen by the caller).
    if [ -n "${DATABASE_URL:-}" ]; then
        echo "$DATABASE_URL"; return
    fi
    if "$VENV/bin/python" - <<'PY' 2>/dev/null
import psycopg2
psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
PY
    then
        echo "postgresql://postgres@127.0.0.1:5432"; return
    fi
    start_private_cluster
}

ensure_database() {
    # ensure_database URL: create the database named in URL when missing.
    "$VENV/bin/python" - "$1" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
import psycopg2
from psycopg2 import sql
url = sys.argv[1]
parts = urlsplit(url)
name = parts.path.lstrip("/")
admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
try:
    psycopg2.connect(url, connect_timeout=5).close()
except psycopg2.OperationalError as exc:
    if "does not exist" not in str(exc):
        raise
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    print(f"created database {name}", file=sys.stderr)
PY
}
