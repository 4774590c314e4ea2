"""The rates that apply to a customer, for every audience (self care shows a
customer's own; the back office and the API may ask for any customer's).

Each answer comes from the rating function itself (billing_private.find_sell_rate:
the first rate plan by priority with a valid rate for the number wins, longest prefix
within it; a blocked rate counts as none), so no page can disagree with the bill.
Money stays Decimal.
"""
from __future__ import annotations

from ..csvstream import Export
from ..dbapi import fetch_all, fetch_one, fetch_value, like_escape


def ratecards(conn, customer_id: int) -> list[dict]:
    """The customer's rate plans in priority order."""
    return fetch_all(conn, """
        SELECT cr.priority, rc.id, rc.name, rc.currency
          FROM billing.customer_ratecards cr JOIN billing.ratecards rc ON rc.id = cr.ratecard_id
         WHERE cr.customer_id = %(c)s ORDER BY cr.priority""", {"c": customer_id})


def _search(query: str | None) -> tuple[str, dict]:
    """Digits (with an optional +) search prefixes that start with them; anything else
    searches destination names."""
    q = (query or "").strip()
    if not q:
        return "true", {}
    digits = q[1:] if q.startswith("+") else q
    if digits.isdigit():
        return "n.prefix LIKE %(q_prefix)s", {"q_prefix": digits + "%"}
    return "n.destination ILIKE %(q_name)s", {"q_name": "%" + like_escape(q) + "%"}


# Prefixes present in the customer's ratecards now (blocked ones too, so the customer
# sees that a destination is barred), each named by the longest destination prefix.
_PREFIXES = """
    WITH cards AS (
        SELECT cr.ratecard_id FROM billing.customer_ratecards cr WHERE cr.customer_id = %(c)s),
    prefixes AS (
        SELECT DISTINCT r.prefix
          FROM billing.rates r JOIN cards USING (ratecard_id)
         WHERE (r.valid_from IS NULL OR r.valid_from <= now())
           AND (r.valid_to IS NULL OR now() < r.valid_to)),
    named AS (
        SELECT p.prefix,
               (SELECT d.name FROM billing.destinations d
                 WHERE d.prefix = ANY (billing_private.prefixes(p.prefix))
                 ORDER BY length(d.prefix) DESC LIMIT 1) AS destination
          FROM prefixes p)"""

# The rate that applies to a number starting with the prefix (`page`: the prefixes asked).
_APPLIED = """
    SELECT n.prefix, n.destination,
           s.prefix AS applied_prefix, s.rate, s.connect_fee, s.min_duration,
           s.increment_first, s.increment_next, s.valid_to,
           rc.name AS ratecard, rc.currency, cr.priority
      FROM page n
      LEFT JOIN LATERAL billing_private.find_sell_rate(%(c)s, n.prefix, now()) s ON true
      LEFT JOIN billing.ratecards rc ON rc.id = s.ratecard_id
      LEFT JOIN billing.customer_ratecards cr ON cr.ratecard_id = s.ratecard_id AND cr.customer_id = %(c)s"""


def applied(conn, customer_id: int, query: str | None = None, *, page: int = 1,
            per_page: int = 50) -> tuple[list[dict], int]:
    """Prefixes of the customer's ratecards (valid now), ordered by prefix, each with the
    rate that applies (None: calls to it are refused); and how many prefixes match.
    Cost: the distinct prefixes of the customer's cards (plus a destination lookup for
    each when searching by name), then one find_sell_rate per row of the page only."""
    search, params = _search(query)
    params.update(c=customer_id, limit=per_page, offset=(page - 1) * per_page)
    total = fetch_value(conn, f"{_PREFIXES} SELECT count(*) FROM named n WHERE {search}", params)
    rows = fetch_all(conn, f"""{_PREFIXES},
        page AS (SELECT * FROM named n WHERE {search} ORDER BY n.prefix LIMIT %(limit)s OFFSET %(offset)s)
        {_APPLIED} ORDER BY n.prefix""", params)
    return rows, total


EXPORT_HEADER = ["prefix", "destination", "rate_per_minute", "currency", "connect_fee", "increment",
                 "min_duration", "applied_prefix", "ratecard", "valid_to", "available"]


def export(customer_id: int, query: str | None = None) -> Export:
    """Every row of applied() as a CSV export (one find_sell_rate per prefix)."""
    search, params = _search(query)
    params["c"] = customer_id
    return Export(EXPORT_HEADER, f"""{_PREFIXES}, page AS (SELECT * FROM named n WHERE {search})
        SELECT a.prefix, a.destination, a.rate, a.currency, a.connect_fee,
               CASE WHEN a.rate IS NOT NULL THEN a.increment_first || '/' || a.increment_next END,
               a.min_duration, a.applied_prefix, a.ratecard, a.valid_to,
               CASE WHEN a.rate IS NOT NULL THEN 'yes' ELSE 'no' END
          FROM ({_APPLIED}) a
         ORDER BY a.prefix""", params)


def for_number(conn, customer_id: int, number: str) -> dict | None:
    """What a call to `number` is charged now (None: the call would be refused, no_rate)."""
    number = number.strip().lstrip("+")
    if not number.isdigit() or len(number) > 20:
        return None
    return fetch_one(conn, """
        SELECT s.prefix, s.rate, s.connect_fee, s.min_duration, s.increment_first, s.increment_next,
               rc.name AS ratecard, rc.currency,
               (SELECT d.name FROM billing.destinations d
                 WHERE d.prefix = ANY (billing_private.prefixes(%(n)s))
                 ORDER BY length(d.prefix) DESC LIMIT 1) AS destination
          FROM billing_private.find_sell_rate(%(c)s, %(n)s, now()) s
          JOIN billing.ratecards rc ON rc.id = s.ratecard_id""", {"c": customer_id, "n": number})
