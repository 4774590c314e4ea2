#!/usr/bin/env bash
# `make run`: everything from a fresh clone to the portal with demo data on :5000.
source "$(dirname "$0")/lib.sh"

ensure_venv "$ROOT/requirements.txt"
apt_install "${WEASYPRINT_DEBS[@]}" || log "WeasyPrint's libraries are missing: PDF invoices will fail"

if [ -n "${DATABASE_URL:-}" ]; then
    export DATABASE_URL
else
    export DATABASE_URL="$(find_postgres_server)/billing"
fi
ensure_database "$DATABASE_URL"

if [ -z "${SECRET_KEY:-}" ]; then
    [ -f "$VAR/secret_key" ] || "$VENV/bin/python" -c "import secrets; print(secrets.token_hex(32))" > "$VAR/secret_key"
    export SECRET_KEY="$(cat "$VAR/secret_key")"
fi

# Links in mails (password reset, address verification) start with the portal's address.
export PORTAL_URL="${PORTAL_URL:-http://127.0.0.1:${PORT:-5000}}"

FLASK=("$VENV/bin/flask" --app "$ROOT/wsgi.py")
log "database: $DATABASE_URL"
"${FLASK[@]}" db upgrade
"${FLASK[@]}" seed-demo

ADMIN_EMAIL="${ADMIN_EMAIL:-admin@example.net}"
if [ -z "${ADMIN_PASSWORD:-}" ]; then
    [ -f "$VAR/admin_password" ] || "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe(12))" > "$VAR/admin_password"
    ADMIN_PASSWORD="$(cat "$VAR/admin_password")"
fi
"${FLASK[@]}" create-admin --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" >/dev/null

cat <<MSG

  Portal:     http://127.0.0.1:${PORT:-5000}
  Admin:      $ADMIN_EMAIL / $ADMIN_PASSWORD
  Customers:  see 'Demo logins' printed by seed-demo above

  This is the development server. Production: docs/deployment.md (gunicorn, nginx, systemd).

MSG
export SCHEDULER_ENABLED="${SCHEDULER_ENABLED:-1}"
exec "${FLASK[@]}" run --host 127.0.0.1 --port "${PORT:-5000}"
