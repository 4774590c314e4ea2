"""The re-rate form: a period of days (the operator's time zone) and, optionally, one
customer and/or one provider."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SubmitField, ValidationError
from wtforms.validators import DataRequired

from .services import MAX_DAYS


class RerateForm(FlaskForm):
    date_from = DateField("From (day)", validators=[DataRequired(message="Choose the first day.")])
    date_to = DateField("To (day, included)", validators=[DataRequired(message="Choose the last day.")])
    customer_id = SelectField("Customer", coerce=str, default="", description="Empty: every customer.")
    provider_id = SelectField("Provider", coerce=str, default="", description="Empty: every provider.")
    submit = SubmitField("Preview the re-rate")

    def validate_date_to(self, field):
        if field.data and self.date_from.data:
            if field.data < self.date_from.data:
                raise ValidationError("The end is before the start.")
            if (field.data - self.date_from.data).days + 1 > MAX_DAYS:
                raise ValidationError(f"At most {MAX_DAYS} days.")

    def ids(self) -> tuple[int | None, int | None]:
        return (int(self.customer_id.data) if (self.customer_id.data or "").isdigit() else None,
                int(self.provider_id.data) if (self.provider_id.data or "").isdigit() else None)
