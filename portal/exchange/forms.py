"""Forms of the exchange-rate pages."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, SubmitField, ValidationError
from wtforms.validators import InputRequired

from ..admin.manage.forms import LocalDateTimeField, currency_field
from . import services


class ExchangeRateForm(FlaskForm):
    from_currency = currency_field("From (the provider's currency)")
    to_currency = currency_field("To (the customer's currency)")
    rate = StringField("Rate", validators=[InputRequired(message="Enter the rate.")],
                       description="1 unit of the first currency = this many of the second, e.g. 0.0871 "
                                   "(at most 12 decimals, never rounded).")
    valid_from = LocalDateTimeField("Valid from", description="Empty = now. The pair's rate valid then ends there (a "
                                                              "new version). A past date applies to calls already "
                                                              "billed only once their period is re-rated.")
    valid_to = LocalDateTimeField("Valid to", description="Empty = open (or the end of the rate it replaces).")
    submit = SubmitField("Add rate")

    def validate_rate(self, field):
        try:
            field.data = services.parse_rate(field.data)
        except services.ExchangeRateError as exc:
            raise ValidationError(exc.sentence) from None

    def validate_to_currency(self, field):
        if field.data and field.data == self.from_currency.data:
            raise ValidationError("Choose two different currencies.")

    def validate_valid_to(self, field):
        if field.data and self.valid_from.data and field.data <= self.valid_from.data:
            raise ValidationError("Must be after 'valid from'.")


class CloseForm(FlaskForm):
    at = LocalDateTimeField("End at", description="Empty = now. A rate that has not started by then is removed.")
    submit = SubmitField("Close rate")


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")],
                     description="A header line, then one rate per line: from_currency, to_currency, rate, "
                                 "valid_from[, valid_to]. All lines or none are imported.")
    submit = SubmitField("Import")
