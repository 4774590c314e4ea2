"""Forms of the invoice pages (admin)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from . import InvoiceError
from .services import parse_credit_amount
from ..validators import sane_date


class GenerateForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int, validators=[DataRequired()])
    period_start = DateField("First day", validators=[DataRequired(), sane_date])
    period_last = DateField("Last day (included)", validators=[DataRequired(), sane_date])
    submit = SubmitField("Build draft")

    def validate_period_last(self, field):
        if self.period_start.data and field.data and field.data < self.period_start.data:
            raise ValidationError("The last day is before the first day.")


class CreditNoteForm(FlaskForm):
    amount = StringField("Net amount to credit", validators=[DataRequired()],
                         description="Tax at the invoice's rate is added.", render_kw={"placeholder": "e.g. 10.00"})
    reason = StringField("Reason", validators=[DataRequired(), Length(max=200)],
                         description="Printed on the credit note.")
    submit = SubmitField("Issue credit note")

    def validate_amount(self, field):
        try:
            parse_credit_amount(field.data)
        except InvoiceError as exc:
            raise ValidationError(str(exc)) from None
