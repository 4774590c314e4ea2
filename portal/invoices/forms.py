"""Forms of the invoice pages (admin)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from . import InvoiceError
from .services import parse_credit_amount


class GenerateForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int, validators=[DataRequired()])
    period_start = DateField("First day", validators=[DataRequired()])
    period_last = DateField("Last day (included)", validators=[DataRequired()])
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


class PaymentForm(FlaskForm):
    """A payment received for one invoice: posted to the ledger, allocated to it first."""
    received = StringField("Amount received", validators=[DataRequired()], render_kw={"placeholder": "e.g. 120.00"},
                         description="More than is open goes to the customer's other open invoices, oldest "
                                     "first; what is left is a credit on account.")
    payment_reference = StringField("Reference", validators=[Length(max=100)], description="Bank transfer reference.")
    submit = SubmitField("Record payment")

    def validate_received(self, field):
        from ..ledger import LedgerError, parse_amount

        try:
            amount = parse_amount((field.data or "").strip().replace(",", "."))
        except LedgerError as exc:
            raise ValidationError(str(exc)) from None
        if amount <= 0:
            raise ValidationError("the amount received must be positive")
        field.data = amount
