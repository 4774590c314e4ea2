"""Select choices for WTForms: `SelectChoice` objects (WTForms 3.4 drops (value, label)
tuples), built from (value, label) pairs."""
from __future__ import annotations

from collections.abc import Iterable

from wtforms.fields.choices import SelectChoice


def options(pairs: Iterable[tuple]) -> list[SelectChoice]:
    """Choices of a select from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]
