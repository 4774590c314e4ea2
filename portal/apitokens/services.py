"""Issue, revoke and check API tokens; count each token's requests for the rate limit.

A token is `vbk_` + 43 characters of base64url (256 random bits). The database keeps
its SHA-256 and its first characters (`token_prefix`, to tell tokens apart in lists),
never the token: it is shown once, when it is made.

Scopes: `read` (every customer, read-only), `write` (read and change everything the API
offers), `customer` (one customer's own data, read-only: for resellers' and customers'
integrations). A token may expire; a revoked or expired token is refused.

Rate limit: requests per token and minute are counted in billing.api_request_counts, in
PostgreSQL, so every portal process and server shares one count (the approach of the
sign-in throttle, portal/auth/throttle.py). `check` looks the token up, counts the
request and notes when the token was last used (at most once a minute) in one
statement, and commits it at once without waiting for the disk (synchronous_commit off
for that transaction: a lost count costs nothing), so the request's own transaction
holds no lock on the counter.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, text

from .. import audit
from ..errors import NotFound, Refused
from ..extensions import db
from ..models import ApiToken, Customer

TOKEN_PREFIX = "vbk_"
SCOPES = {
    "read": "Read: every customer's data, no changes",
    "write": "Write: read and change everything the API offers",
    "customer": "Customer: one customer's own data, read-only",
}
_TOKEN_RE = re.compile(r"^vbk_[A-Za-z0-9_-]{43}$")


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: a live token."""
    id: int
    name: str
    scope: str
    customer_id: int | None

    @property
    def staff(self) -> bool:
        """A token of the operator (read or write), not bound to one customer."""
        return self.scope in ("read", "write")

    @property
    def can_write(self) -> bool:
        return self.scope == "write"

    @property
    def actor(self) -> str:
        """How the audit log and the ledger's created_by name this token."""
        return f"api:{self.name}#{self.id}"


@dataclass(frozen=True)
class Check:
    """The outcome of `check`: the caller (None: refused, see `problem`), this
    minute's request count and the seconds until the next minute."""
    caller: Caller | None
    problem: str | None
    requests: int
    reset_seconds: int


def issue(name: str, scope: str, *, customer_id: int | None, expires_at: datetime | None,
          actor: str) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the token text (shown once). Audited; the
    caller commits."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Refused("Give the token a name of 1 to 100 characters (what uses it).", "name")
    if scope not in SCOPES:
        raise Refused(f"The scope is one of {', '.join(SCOPES)}.", "scope")
    if scope == "customer":
        if customer_id is None or db.session.get(Customer, customer_id) is None:
            raise Refused("A customer token needs its customer.", "customer_id")
    else:
        customer_id = None
    if expires_at is not None and expires_at <= datetime.now(timezone.utc):
        raise Refused("The expiry must be in the future.", "expires_at")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_prefix=token[:12], token_hash=_hash(token), scope=scope, customer_id=customer_id,
                   expires_at=expires_at, created_by=actor)
    db.session.add(row)
    db.session.flush()
    audit.record("create", "api_token", row.id, actor=actor, name=name, scope=scope, customer_id=customer_id,
                 expires_at=expires_at)
    return row, token


def revoke(token_id: int, actor: str) -> ApiToken:
    """Revoke a token at once (every process refuses it from its next request). Audited;
    the caller commits."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("no such API token")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = datetime.now(timezone.utc), actor
        audit.record("revoke", "api_token", row.id, actor=actor, name=row.name)
    return row


def listing(*, include_revoked: bool = False):
    """Tokens as a select to page, newest first."""
    query = select(ApiToken)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return query.order_by(ApiToken.id.desc())


_CHECK = text("""
    WITH t AS (
        SELECT id, name, scope, customer_id, expires_at, revoked_at
          FROM billing.api_tokens WHERE token_hash = :hash),
    live AS (
        SELECT id FROM t WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())),
    counted AS (
        INSERT INTO billing.api_request_counts AS c (token_id, window_start, requests)
        SELECT id, date_trunc('minute', now()), 1 FROM live
        ON CONFLICT (token_id, window_start) DO UPDATE SET requests = c.requests + 1
        RETURNING requests),
    used AS (
        UPDATE billing.api_tokens u SET last_used_at = now()
          FROM live
         WHERE u.id = live.id AND (u.last_used_at IS NULL OR u.last_used_at < now() - interval '1 minute')
        RETURNING u.id)
    SELECT t.id, t.name, t.scope, t.customer_id, t.expires_at <= now() AS expired, t.revoked_at IS NOT NULL AS revoked,
           set_config('synchronous_commit', 'off', true) AS no_wait,
           coalesce((SELECT requests FROM counted), 0) AS requests,
           ceil(extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now()))::integer AS reset,
           (SELECT count(*) FROM used) AS touched
      FROM t""")


def check(token: str) -> Check:
    """Look up `token`, count this request in its minute and commit that (alone, without
    waiting for the disk). Cost: uq_api_tokens_token_hash and pk_api_request_counts."""
    if not _TOKEN_RE.match(token or ""):
        return Check(None, "malformed", 0, 0)
    row = db.session.execute(_CHECK, {"hash": _hash(token)}).mappings().one_or_none()
    db.session.commit()
    if row is None:
        return Check(None, "unknown", 0, 0)
    if row["revoked"]:
        return Check(None, "revoked", 0, 0)
    if row["expired"]:
        return Check(None, "expired", 0, 0)
    return Check(Caller(row["id"], row["name"], row["scope"], row["customer_id"]), None, row["requests"],
                 max(int(row["reset"]), 1))
