"""Forms of the back office's feature pages (CDR browser, reports, simulator, rate deck
import and export, invoices). The management pages' forms are in manage/forms.py.

GET filter forms have no CSRF token: they change nothing and make shareable URLs."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, DateTimeLocalField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from ..choices import options
from ..forms import parsed
from ..invoices.services import parse_credit_amount
from ..ledger.services import LedgerError, parse_amount
from ..rateimport.services import FIELDS
from ..reports.services import DIMENSIONS, MAX_DAYS
from ..validators import sane_date


class _GetForm(FlaskForm):
    class Meta:
        csrf = False


# ----------------------------------------------------------------------------- CDR browser

class CdrFilterForm(_GetForm):
    number = StringField("Number", validators=[Optional(), Regexp(r"^\+?[0-9]{1,20}$",
                                                                  message="digits, optionally with a leading +")],
                         render_kw={"placeholder": "+4670 or 336123"})
    number_in = SelectField("Search in", choices=options([("either", "Caller or destination"),
                                                         ("destination", "Destination"), ("caller", "Caller")]),
                            default="either")
    match = SelectField("Match", choices=options([("prefix", "Starts with"), ("contains", "Contains (31 days)")]),
                        default="prefix")
    date_from = DateField("From", validators=[Optional(), sane_date])
    date_to = DateField("To", validators=[Optional(), sane_date])
    customer_id = SelectField("Customer", coerce=str, default="")
    endpoint_id = SelectField("Endpoint", coerce=str, default="")
    provider_id = SelectField("Provider", coerce=str, default="")
    gateway = SelectField("Gateway", coerce=str, default="")
    prefix = StringField("Destination prefix", validators=[Optional(), Regexp(r"^[0-9]{1,20}$", message="digits only")])
    hangup_cause = StringField("Hangup cause", validators=[Optional(), Length(max=64),
                                                           Regexp(r"^[A-Z_0-9]+$", message="a cause name like NORMAL_CLEARING")])
    answered = SelectField("Answered", choices=options([("", "Any"), ("yes", "Answered"), ("no", "Not answered")]), default="")
    status = SelectField("Rating", choices=options([("", "Any"), ("rated", "Rated"), ("unrated", "Unrated")]), default="")
    review = SelectField("Review", choices=options([("", "Any"), ("yes", "Calls to review (overrun, no hold, too long)")]),
                         default="")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("the end is before the start")


# ----------------------------------------------------------------------------- reports

class ReportForm(_GetForm):
    dimension = SelectField("Group by", choices=options(DIMENSIONS.items()), default="day")
    date_from = DateField("From", validators=[Optional(), sane_date])
    date_to = DateField("To", validators=[Optional(), sane_date])
    customer_id = SelectField("Customer", coerce=str, default="")
    currency = SelectField("Currency", coerce=str, default="", validate_choice=False,
                           description="Customers paying in this currency (amounts are never added across currencies).")

    def validate_date_to(self, field):
        if field.data and self.date_from.data:
            if field.data < self.date_from.data:
                raise ValidationError("the end is before the start")
            if (field.data - self.date_from.data).days + 1 > MAX_DAYS:
                raise ValidationError(f"at most {MAX_DAYS} days")


# ----------------------------------------------------------------------------- simulator

class SimulatorForm(_GetForm):
    """A simulation changes nothing, so it is a shareable URL."""
    endpoint_id = SelectField("Endpoint", coerce=str, default="",
                              description="Fills the source from the endpoint (its IP, or its SIP user).")
    source_ip = StringField("Source IP", validators=[Optional(), Length(max=45)], render_kw={"placeholder": "198.51.100.7"})
    sip_user = StringField("SIP user", validators=[Optional(), Length(max=64)], render_kw={"placeholder": "acme100"})
    caller_id = StringField("Caller ID", validators=[Optional(), Length(max=32)], render_kw={"placeholder": "33123456789"})
    destination = StringField("Number dialled", validators=[DataRequired("type the number to dial"), Length(max=64)],
                              render_kw={"placeholder": "+33612345678"})


# ----------------------------------------------------------------------------- rate decks

DELIMITERS = [("auto", "Detect"), (",", "Comma ,"), (";", "Semicolon ;"), ("\t", "Tab"), ("|", "Pipe |")]


class UploadForm(FlaskForm):
    target = SelectField("Import into", validators=[DataRequired()],
                         description="Sell rates go into a ratecard, cost rates into a provider.")
    deck = FileField("Rate deck (CSV)", validators=[FileRequired("choose a CSV file")])
    delimiter = SelectField("Delimiter", choices=options(DELIMITERS), default="auto")
    has_header = BooleanField("The first line is a header", default=True)
    submit = SubmitField("Upload")


MODE_CHOICES = [("update", "Update: only the prefixes in the file change"),
                ("replace", "Replace: the file is the complete deck; prefixes not in it are closed")]


class MappingForm(FlaskForm):
    mode = SelectField("Mode", choices=options(MODE_CHOICES), default="update",
                       description="Carriers' daily notices list only what changes: use update. Replace closes every "
                                   "current rate whose prefix is not in the file, at the effective date.")
    effective_from = DateTimeLocalField("Effective from", format=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"], validators=[DataRequired()],
                                        description="New rates start then; the rates they replace end then (in the portal's time zone, shown at the top right).")
    default_increment = StringField("Increment when not in the file", default="60/60",
                                    validators=[DataRequired(), Regexp(r"^[1-9][0-9]{0,4}/[1-9][0-9]{0,4}$",
                                                                       message="write first/next in seconds, e.g. 60/60")])
    weight_id = SelectField("Add unknown prefixes to the destination catalogue as", coerce=str, default="",
                            description="Needs the destination name column. Leave empty to only import rates.")
    submit = SubmitField("Preview changes")


def add_mapping_fields(form_class, columns: list[tuple[str, str]]):
    """A MappingForm subclass with one select per field (choices: the file's columns)."""

    class Form(form_class):
        pass

    choices = options([("", "— not in the file —")] + columns)
    for name, label, required in FIELDS:
        setattr(Form, f"map_{name}", SelectField(label, choices=choices, default="",
                                                 validators=[DataRequired(f"choose the {label.lower()} column")] if required else [Optional()]))
    return Form


class RunForm(FlaskForm):
    """The import button; a replace that closes prefixes needs their number typed."""
    confirm_removed = StringField("Type the number of prefixes to close", filters=[lambda v: v.strip() if v else v])
    submit = SubmitField("Import")


class ExportForm(_GetForm):
    source = SelectField("Export the current rates of", validators=[DataRequired()])


# ----------------------------------------------------------------------------- invoices

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
        parsed(parse_credit_amount, field.data)


def _positive_payment(text: str):
    amount = parse_amount((text or "").strip().replace(",", "."))
    if amount <= 0:
        raise LedgerError("the amount received must be positive")
    return amount


class PaymentForm(FlaskForm):
    """A payment received for one invoice: posted to the ledger, allocated to it first."""
    received = StringField("Amount received", validators=[DataRequired()], render_kw={"placeholder": "e.g. 120.00"},
                           description="More than is open goes to the customer's other open invoices, oldest "
                                       "first; what is left is a credit on account.")
    payment_reference = StringField("Reference", validators=[Length(max=100)], description="Bank transfer reference.")
    submit = SubmitField("Record payment")

    def validate_received(self, field):
        field.data = parsed(_positive_payment, field.data)


# ----------------------------------------------------------------------------- CDR retention

class CdrArchiveForm(FlaskForm):
    accept_review = BooleanField("I have looked at the calls to review of this month",
                                 description="Without it, a month with calls beyond their grant, without a hold or "
                                             "too long is refused.")


class CdrRetentionForm(FlaskForm):
    months = IntegerField("Months of CDRs kept", validators=[InputRequired(), NumberRange(min=0, max=1200)],
                          description="Full months kept in the database before the current one; older months are "
                                      "archived by the monthly cdr_archive job. 0 keeps every month.")
