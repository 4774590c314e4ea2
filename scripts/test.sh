#!/usr/bin/env bash
# `make test`: everything from a fresh clone to the whole test suite passing.
source "$(dirname "$0")/lib.sh"

ensure_venv "$ROOT/requirements-dev.txt"
# System packages the suite needs: WeasyPrint's libraries (invoice PDFs), Chromium
# (browser tests through Playwright, never a downloaded browser), tzdata (CDR time
# zone tests), nginx and openssl (tests/deploy: gunicorn behind nginx with TLS, as
# deploy/ documents; the test runs its own nginx on a spare port, never the service).
apt_install "${WEASYPRINT_DEBS[@]}" chromium tzdata nginx openssl

# The real-switch tier (tests/switch): the shared FreeSWITCH 1.10.12 build, installed
# once per machine with its own install.sh (Debian runtime packages and sipp), reused
# afterwards. Without ../shared/freeswitch the tier is skipped, and says so.
SHARED_FS="$(cd "$ROOT/.." && pwd)/shared/freeswitch"
if [ -x "$SHARED_FS/install.sh" ]; then
    if [ -z "${FREESWITCH_PREFIX:-}" ]; then
        if [ "$(id -u)" -eq 0 ]; then FREESWITCH_PREFIX=/opt/freeswitch; else FREESWITCH_PREFIX="$VAR/freeswitch"; fi
    fi
    log "installing FreeSWITCH 1.10.12 for the real-switch tier into $FREESWITCH_PREFIX"
    "$SHARED_FS/install.sh" "$FREESWITCH_PREFIX" >"$VAR/freeswitch-install.log" 2>&1 \
        || { tail -20 "$VAR/freeswitch-install.log" >&2; log "FreeSWITCH install failed (log: $VAR/freeswitch-install.log)"; exit 1; }
    export FREESWITCH_PREFIX
else
    log "real-switch tier skipped: $SHARED_FS not found (tests/switch will report it as skipped)"
fi

if [ -z "${DATABASE_URL:-}" ]; then
    export DATABASE_URL="$(find_postgres_server)/postgres"
fi
export PYTHONDONTWRITEBYTECODE=1
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
