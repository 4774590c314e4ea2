#!/usr/bin/env bash
# `make test`: everything from a fresh clone to the whole test suite passing.
source "$(dirname "$0")/lib.sh"

ensure_venv "$ROOT/requirements-dev.txt"
# System packages the suite needs: WeasyPrint's libraries (invoice PDFs), Chromium
# (browser tests through Playwright, never a downloaded browser), tzdata (CDR time
# zone tests), nginx and openssl (tests/deploy: gunicorn behind nginx with TLS, as
# deploy/ documents; the test runs its own nginx on a spare port, never the service).
apt_install "${WEASYPRINT_DEBS[@]}" chromium tzdata nginx openssl

if [ -z "${DATABASE_URL:-}" ]; then
    export DATABASE_URL="$(find_postgres_server)/postgres"
fi
export PYTHONDONTWRITEBYTECODE=1
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
