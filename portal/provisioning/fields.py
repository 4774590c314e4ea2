"""Value checks for the provisioning file: each converter returns the stored value or
raises `Invalid` with the message that follows the entry path in the error.

The rules mirror the database's CHECK constraints (sql/migrations/0001_foundation.sql)
so a file is refused with a clear message before anything is written.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation


class Invalid(ValueError):
    """A value that does not fit its key; the message says what is expected."""


class Number(str):
    """A YAML int or float kept as its source text, so `0.02` stays exactly 0.02 and a
    prefix written `0044` keeps its zeros."""

    __slots__ = ()


NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DIGITS_RE = re.compile(r"^[0-9]{1,20}$")
DIGITS_OR_EMPTY_RE = re.compile(r"^[0-9]{0,20}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
HOST_RE = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$")
SIP_DOMAIN_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
CODECS_RE = re.compile(r"^[A-Za-z0-9.@/,_-]{1,200}$")
ENDPOINT_USER_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
GATEWAY_USER_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
INCREMENT_RE = re.compile(r"^\s*([0-9]+)\s*/\s*([0-9]+)\s*$")
INTEGER_RE = re.compile(r"^[-+]?[0-9]+$")
ARGON2_RE = re.compile(r"^\$argon2(id|i|d)\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")

MAX_INCREMENT = 86400
# numeric(20, 6) money and numeric(14, 6) rates: integer digits left for each.
MONEY_LIMIT = Decimal(10) ** 14
RATE_LIMIT = Decimal(10) ** 8


def _is_number_like(value) -> bool:
    return isinstance(value, (int, Decimal, str)) and not isinstance(value, bool)


def text(value, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise Invalid("must be text")
    value = str(value)
    if max_length is not None and len(value) > max_length:
        raise Invalid(f"longer than {max_length} characters")
    return value


def pattern(regex: re.Pattern, message: str):
    def convert(value) -> str:
        if not isinstance(value, str) or not regex.match(value):
            raise Invalid(message)
        return str(value)

    return convert


name = pattern(NAME_RE, "must be 1 to 64 letters, digits, '.', '_' or '-'")
currency = pattern(CURRENCY_RE, "must be a 3-letter currency code in capitals, like EUR")
email = pattern(EMAIL_RE, "not an e-mail address")
host = pattern(HOST_RE, "not a host name or IP address")
sip_domain = pattern(SIP_DOMAIN_RE, "not a domain name")
codecs = pattern(CODECS_RE, "not a codec list like PCMA,PCMU")
endpoint_username = pattern(ENDPOINT_USER_RE, "must be 1 to 64 letters, digits, '.', '_', '+' or '-'")
gateway_username = pattern(GATEWAY_USER_RE, "must be 1 to 64 letters, digits, '.', '_', '@', '+' or '-'")


def _digit_string(value, regex: re.Pattern, message: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not regex.match(value):
        raise Invalid(message)
    return str(value)


def prefix(value) -> str:
    return _digit_string(value, DIGITS_RE, "not a prefix (1 to 20 digits)")


def digits_or_empty(value) -> str:
    return "" if value is None else _digit_string(value, DIGITS_OR_EMPTY_RE, "must be 0 to 20 digits")


def boolean(value) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def integer(minimum: int | None = None, maximum: int | None = None):
    def convert(value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise Invalid("must be a whole number")
        if isinstance(value, str):
            cleaned = value.strip().replace("_", "")
            if not INTEGER_RE.match(cleaned):
                raise Invalid("must be a whole number")
            value = int(cleaned)
        if minimum is not None and value < minimum:
            raise Invalid(f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be <= {maximum}")
        return value

    return convert


def decimal(places: int = 6, minimum: Decimal | int | None = None, below: Decimal | int | None = None,
            limit: Decimal = MONEY_LIMIT):
    """A decimal number stored exactly: a YAML number keeps its source text, a string is
    parsed as written, and more than `places` decimals is an error, never a rounding."""

    def convert(value) -> Decimal:
        if isinstance(value, float):  # only from Python callers: the YAML loader keeps text
            value = repr(value)
        if not _is_number_like(value):
            raise Invalid("not a decimal number")
        try:
            amount = Decimal(str(value).strip().replace("_", ""))
        except (InvalidOperation, ValueError):
            raise Invalid("not a decimal number") from None
        if not amount.is_finite():
            raise Invalid("not a decimal number")
        if amount.as_tuple().exponent < -places:
            raise Invalid(f"more than {places} decimal places")
        if minimum is not None and amount < minimum:
            raise Invalid(f"must be >= {minimum}")
        if below is not None and amount >= below:
            raise Invalid(f"must be < {below}")
        if abs(amount) >= limit:
            raise Invalid("too large")
        return amount

    return convert


money = decimal(6)
non_negative_money = decimal(6, minimum=0)
# billing.exchange_rate = numeric(24, 12), > 0 (0110)
_exchange_rate = decimal(12, minimum=0, limit=Decimal(10) ** 12)


def exchange_rate(value) -> Decimal:
    rate = _exchange_rate(value)
    if rate == 0:
        raise Invalid("must be > 0")
    return rate


rate = decimal(6, minimum=0, limit=RATE_LIMIT)
tax_rate = decimal(4, minimum=0, below=1)


def one_of(*choices: str):
    def convert(value) -> str:
        if not isinstance(value, str) or value not in choices:
            raise Invalid("must be one of: " + ", ".join(choices))
        return str(value)

    return convert


def cidr(value) -> str:
    if not isinstance(value, str):
        raise Invalid("not a CIDR")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise Invalid("not a CIDR") from None
    raise Invalid(f"not a CIDR: host bits are set (did you mean {network}?)")


def vat_id(value) -> str:
    """A VAT ID as stored: capitals, no spaces or dots ('se 5560 1234 5601' -> 'SE556012345601')."""
    from ..invoices.legal import normalize_vat_id

    if not isinstance(value, str):
        raise Invalid("not a VAT ID")
    try:
        normalized = normalize_vat_id(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if normalized is None:
        raise Invalid("not a VAT ID (write null for none)")
    return normalized


def increment(value) -> tuple[int, int]:
    match = INCREMENT_RE.match(value) if isinstance(value, str) else None
    first, nxt = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not (0 < first <= MAX_INCREMENT and 0 < nxt <= MAX_INCREMENT):
        raise Invalid(f"not an increment like 60/60 (first/next seconds, each 1 to {MAX_INCREMENT})")
    return first, nxt


def moment(value) -> date | datetime:
    """A date (midnight in the database's time zone), or a date-time with or without
    an offset (without one: the database's time zone)."""
    if isinstance(value, (date, datetime)):
        return value
    if isinstance(value, str):
        raw = value.strip()
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    raise Invalid("not a date (YYYY-MM-DD) or date-time (YYYY-MM-DD HH:MM:SS[+HH:MM])")


def password_hash(value) -> str:
    if not isinstance(value, str) or not ARGON2_RE.match(value):
        raise Invalid("not an argon2 password hash (as written by provision dump)")
    return str(value)


def nullable(convert):
    def wrapped(value):
        return None if value is None else convert(value)

    return wrapped


def moment_text(value: date | datetime | None) -> str | None:
    """The SQL literal text of a moment; PostgreSQL applies the session time zone to a
    date or a date-time without offset."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value.isoformat()
