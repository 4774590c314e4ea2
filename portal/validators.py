"""Field checks shared by the forms of several features."""
from __future__ import annotations

from datetime import date

from wtforms.validators import ValidationError

EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2999, 12, 31)


def sane_date(form, field) -> None:
    """Dates of filters and periods: far-off ones (9999-12-31) are typos or probes, and
    the day after 9999-12-31 does not exist, so they are refused beside the field."""
    if field.data is not None and not EARLIEST_DATE <= field.data <= LATEST_DATE:
        raise ValidationError(f"Choose a date between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}.")
