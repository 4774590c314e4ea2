"""Field types of the API's JSON. Money is never a JSON number: amounts and rates are
strings with 6 decimals ("12.500000"), exactly as stored (numeric, Decimal end to end);
a request may write fewer decimals ("12.5") but never more, and never a number."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import marshmallow as ma

from ..ledger.services import LedgerError, parse_amount

SIX = Decimal("0.000001")
MONEY_PATTERN = r"^-?[0-9]{1,14}(\.[0-9]{1,6})?$"


class Money(ma.fields.Field):
    """An amount or a rate: a JSON string with 6 decimals."""

    default_error_messages = {"number": "Money is written as a string such as \"12.50\", never as a JSON number.",
                              "invalid": "Not an amount: {reason}.", "negative": "Must not be negative."}

    def __init__(self, *, minimum: Decimal | None = None, maximum: Decimal | None = None, **kwargs):
        metadata = {"example": "12.500000", "pattern": MONEY_PATTERN,
                    "description": "Money as a string with 6 decimals (never a JSON number)."}
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(metadata=metadata, **kwargs)
        self.minimum, self.maximum = minimum, maximum

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return format(Decimal(value).quantize(SIX), "f")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str):
            raise self.make_error("number")
        try:
            amount = parse_amount(value)
        except LedgerError as exc:
            raise self.make_error("invalid", reason=str(exc)) from None
        if self.minimum is not None and amount < self.minimum:
            raise ma.ValidationError(f"Must be at least {self.minimum}.")
        if self.maximum is not None and amount >= self.maximum:
            raise ma.ValidationError(f"Must be less than {self.maximum}.")
        return amount


class Fraction(ma.fields.Field):
    """A tax rate: a string fraction with at most 4 decimals ("0.2000" is 20 %)."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"example": "0.2000", "pattern": r"^[01](\.[0-9]{1,4})?$",
                                   "description": "A fraction with 4 decimals: 0.2000 is 20 %."}, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(Decimal(value).quantize(Decimal("0.0001")), "f")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str):
            raise ma.ValidationError("A tax rate is written as a string such as \"0.2\".")
        try:
            fraction = Decimal(value.strip())
        except InvalidOperation:
            raise ma.ValidationError("Not a fraction such as 0.2.") from None
        if not fraction.is_finite() or not Decimal(0) <= fraction <= Decimal(1):
            raise ma.ValidationError("A fraction from 0 to 1 (0.2 is 20 %).")
        if fraction.as_tuple().exponent < -4:
            raise ma.ValidationError("At most 4 decimal places.")
        return fraction


class Increment(ma.fields.Field):
    """Billing increments `first/next` in seconds: "60/60", "30/6", "1/1"."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"example": "60/60", "pattern": r"^[0-9]{1,5}/[0-9]{1,5}$",
                                   "description": "first/next seconds, both above 0."}, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value[0]}/{value[1]}"

    def _deserialize(self, value, attr, data, **kwargs):
        match = re.fullmatch(r"([0-9]{1,5})/([0-9]{1,5})", value) if isinstance(value, str) else None
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            raise ma.ValidationError("Write first/next seconds, both above 0, e.g. 60/60 or 30/6.")
        return int(match[1]), int(match[2])


def register(api) -> None:
    """Map the custom fields to their OpenAPI types (strings)."""
    api.register_field(Money, "string", "decimal")
    api.register_field(Fraction, "string", "decimal")
    api.register_field(Increment, "string", None)
    api.register_field(Figure, "string", "decimal")


class Figure(ma.fields.Field):
    """A derived figure (minutes, ASR %, ACD seconds): a decimal string, read-only."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(Decimal(value), "f")
