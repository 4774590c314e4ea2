"""Helpers shared by the forms of every audience."""
from __future__ import annotations

from typing import Callable

from wtforms import ValidationError


def parsed(parse: Callable[[str], object], text: str):
    """`parse(text)` with a domain parser; its refusal (a ValueError such as
    errors.Refused, whose message says what to type) becomes the field's error."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
