"""Idempotency keys of the API's money writes (draft-ietf-httpapi-idempotency-key-header).

The first request with a key inserts the key's row in the transaction that makes the
change, and stores its answer there before the commit. A retry with the same key and
the same request (method, path, body) gets that answer again, with
`Idempotent-Replayed: true`, and changes nothing. A concurrent retry blocks on the
key's unique index until the first commits (then replays) or rolls back (then runs
itself): the change happens once whatever the timing. The same key with another
request is refused (422, idempotency_key_reused). Keys are kept 30 days.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from flask import Response, request
from sqlalchemy import text

from ..extensions import db
from .problems import field_error, problem

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Stored:
    status: int
    body: dict
    location: str | None


class KeyProblem(Exception):
    def __init__(self, response: Response):
        super().__init__("idempotency key refused")
        self.response = response


def key_of_request(required: bool = True) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise KeyProblem(problem(422, f"Send an {HEADER} header (a unique value per operation, e.g. a UUID): a "
                                          "retried request with the same key posts once.", code="validation_failed",
                                     errors=[field_error(HEADER, "required", "header")]))
        return None
    if not KEY_RE.match(key):
        raise KeyProblem(problem(422, f"{HEADER} is 1 to 255 visible ASCII characters.", code="validation_failed",
                                 errors=[field_error(HEADER, "1 to 255 visible ASCII characters", "header")]))
    return key


def fingerprint(parsed_body) -> bytes:
    """The request as the key stands for it: method, path and the parsed body."""
    canonical = json.dumps(parsed_body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).digest()


def claim(key: str, token_id: int, print_: bytes) -> Stored | None:
    """Take `key` for this request (None: go ahead and make the change), or the stored
    answer of the request that took it first. Waits for a concurrent holder of the key."""
    won = db.session.execute(text("""
        INSERT INTO billing.api_idempotency_keys (key, token_id, fingerprint) VALUES (:k, :t, :f)
        ON CONFLICT (key) DO NOTHING RETURNING key"""), {"k": key, "t": token_id, "f": print_}).first()
    if won is not None:
        return None
    row = db.session.execute(text("SELECT fingerprint, status_code, response, location "
                                  "FROM billing.api_idempotency_keys WHERE key = :k"), {"k": key}).one()
    if bytes(row.fingerprint) != print_:
        raise KeyProblem(problem(422, f"This {HEADER} was used for another request (another customer, amount or "
                                      "path): use a new key for a new operation.", code="idempotency_key_reused",
                                 errors=[field_error(HEADER, "used before for another request", "header")]))
    return Stored(row.status_code, row.response, row.location)


def remember(key: str, status: int, body: dict, location: str | None) -> None:
    """Store the answer with the key, in the transaction of the change."""
    db.session.execute(text("UPDATE billing.api_idempotency_keys SET status_code = :s, response = CAST(:r AS jsonb), "
                            "location = :l WHERE key = :k"),
                       {"s": status, "r": json.dumps(body), "l": location, "k": key})


def answer(stored: Stored, replayed: bool) -> Response:
    response = Response(json.dumps(stored.body), status=stored.status, mimetype="application/json")
    if stored.location:
        response.headers["Location"] = stored.location
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
