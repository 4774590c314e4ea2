"""The demo's configuration document: demo.yaml (customers, endpoints, carriers,
routing rules, logins) plus the generated catalogue and rates, in the provisioning
format (CONTRACT 3), loaded by the same loader as an operator's file."""
from __future__ import annotations

import random
from datetime import date
from pathlib import Path

from ..yamlio import parse
from .catalogue import catalogue
from .rates import rate_lists

DEMO_YAML = Path(__file__).resolve().parent / "demo.yaml"
SEED = 20260101

# argon2 hashes of the demo passwords of demo.yaml, computed once: loading a hash is a
# string comparison, while `password:` costs an argon2 run per user and per start.
# tests/provisioning/test_seed_demo.py checks that each one matches its password.
DEMO_PASSWORD_HASHES = {
    "ops@acme.example": "$argon2id$v=19$m=65536,t=3,p=4$C1orTyX83KK7vP5rBztlwQ$2eNbzwz48Na3TgguWBrYp7uChYfIr3tN6bMBk/OF1A4",
    "billing@globex.example": "$argon2id$v=19$m=65536,t=3,p=4$p2IUW9h/zxbdOvrqcABb/g$EPD5ZgP9Ke8Ohwi8LuHy/IlpztGSeU0KP2KsspYrnj4",
    "noc@globex.example": "$argon2id$v=19$m=65536,t=3,p=4$A4JeXnURC+XDeiTPabOFAA$ccHp0Ct6yqyJBbaH//H1Xq/CHkUSgqA6c+jFOVULUEM",
    "peter@initech.example": "$argon2id$v=19$m=65536,t=3,p=4$FezF+qTYc7ScOyxMJwdlSA$M2TTF0Nm4s8/jp4LP6Myjl7/3w1yVxDi6sOKs72Jjx8",
    "admin@resellco.example": "$argon2id$v=19$m=65536,t=3,p=4$5JLStENeN1ASNu7WGVgcPg$0+KKY0kawjsiJAyLeHl96BCuT8YHVbnyIMiTXGy26BI",
}


def build_document(today: date) -> dict:
    """demo.yaml plus the generated catalogue and rates (no balances yet)."""
    document = parse(DEMO_YAML.read_text(encoding="utf-8"), source=str(DEMO_YAML))
    rng = random.Random(SEED)
    document["destinations"] = [{"prefix": p, "name": n, "weight": w} for p, n, w, _ in catalogue()]
    sell, cost = rate_lists(rng, today)
    for card in document["ratecards"]:
        card["rates"] = sell[card["name"]]
    for provider in document["providers"]:
        provider["rates"] = cost[provider["name"]]
    return document
