"""Refusals of the domain services, shared by every audience (back office, self care,
the API): each view turns them into its own answer (a message beside a form field, a
flash, a 400 or 404 page, a JSON error)."""
from __future__ import annotations


class Refused(ValueError):
    """A request the rules refuse; the message says what was wrong and what to do.
    `field` names the input it is about, so a form can show it beside that field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(Refused):
    """No such row within the caller's scope. A row of another customer is reported
    exactly like a missing one, so ids of other customers cannot be probed."""
