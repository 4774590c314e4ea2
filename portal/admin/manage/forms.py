"""Forms of the back office: one FlaskForm per page, checks as `validate_<field>` methods.

Money and rates are parsed with `portal.ledger.parse_amount` into Decimal (never float);
errors are shown beside the field by templates/macros/forms.html.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateTimeLocalField, EmailField, IntegerField, PasswordField, SelectField,
                     SelectMultipleField, StringField, SubmitField, TextAreaField, ValidationError)
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from ...choices import options  # noqa: F401  (used here and by the admin views)
from ...ledger.services import LedgerError, parse_amount
from ...localtime import local_tz
from ...security import MIN_PASSWORD_LENGTH

NAME_RE = r"^[A-Za-z0-9_.-]{1,64}$"
NAME_HELP = "Letters, digits, dot, dash and underscore; at most 64 characters."
NAME_ERROR = "Only letters, digits, dot, dash and underscore are allowed (at most 64, no spaces)."
CODECS_RE = r"^[A-Za-z0-9.@/,_-]{1,200}$"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _none_if_empty(value):
    return value if value not in ("", None) else None


TEXT_FILTERS = [_strip]
OPTIONAL_TEXT_FILTERS = [_strip, _none_if_empty]


def name_field(label="Name", **kw):
    return StringField(label, filters=TEXT_FILTERS, description=kw.pop("description", NAME_HELP),
                       validators=[DataRequired(), Regexp(NAME_RE, message=NAME_ERROR)], **kw)


def digits_field(label, required=True, description=None):
    validators = [DataRequired()] if required else [Optional()]
    validators.append(Regexp(r"^[0-9]{1,20}$", message="Digits only, at most 20."))
    return StringField(label, filters=TEXT_FILTERS, validators=validators, description=description)


def currency_field(label="Currency"):
    return StringField(label, default="EUR", filters=[_strip, lambda v: v.upper() if isinstance(v, str) else v],
                       validators=[DataRequired(), Regexp(r"^[A-Z]{3}$", message="A three-letter ISO code such as EUR.")])


class AmountField(StringField):
    """A decimal amount typed by a person: exact Decimal, at most 6 places, no floats."""

    def __init__(self, label=None, validators=None, minimum=None, maximum=None, **kwargs):
        super().__init__(label, validators or [Optional()], **kwargs)
        self.minimum, self.maximum = minimum, maximum

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "").strip().replace(",", ".") if valuelist else ""
        if not text:
            self.data = None
            return
        try:
            self.data = parse_amount(text)
        except LedgerError as exc:
            self.data = None
            raise ValueError(str(exc).capitalize() + ".") from None
        if self.minimum is not None and self.data < self.minimum:
            raise ValueError(f"Must be at least {self.minimum}.")
        if self.maximum is not None and self.data >= self.maximum:
            raise ValueError(f"Must be less than {self.maximum}.")

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else format(Decimal(self.data).normalize(), "f")


class IncrementField(StringField):
    """Billing increments written `first/next` in seconds (60/60, 30/6, 1/1)."""

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "").strip()
        match = re.fullmatch(r"([0-9]{1,5})/([0-9]{1,5})", text)
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            self.data = None
            raise ValueError("Write first/next seconds, both above 0, e.g. 60/60 or 30/6.")
        self.data = (int(match[1]), int(match[2]))

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return f"{self.data[0]}/{self.data[1]}" if isinstance(self.data, tuple) else "60/60"


class LocalDateTimeField(DateTimeLocalField):
    """A date and time in the operator's time zone, BILLING_TIMEZONE (stored as timestamptz)."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("description", "In the portal's time zone (shown at the top right); empty means open.")
        super().__init__(label, validators or [Optional()], format=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"],
                         **kwargs)

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and self.data.tzinfo is None:
            self.data = self.data.replace(tzinfo=local_tz())

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return self.data.astimezone(local_tz()).strftime("%Y-%m-%d %H:%M") if self.data else ""


UtcDateTimeField = LocalDateTimeField   # its former name (it read UTC before BILLING_TIMEZONE was applied)


def optional_int(label, minimum=0, maximum=None, description=None):
    return IntegerField(label, validators=[Optional(), NumberRange(min=minimum, max=maximum)], description=description)


def form_data(form: FlaskForm, *exclude: str) -> dict:
    """The form's values by field name, without csrf/submit and the `exclude`d fields."""
    skip = {"csrf_token", "submit", *exclude}
    return {name: field.data for name, field in form._fields.items() if name not in skip}


# ------------------------------------------------------------------ customers

class CustomerForm(FlaskForm):
    name = name_field()
    email = EmailField("Billing e-mail", filters=OPTIONAL_TEXT_FILTERS,
                       validators=[Optional(), Email(check_deliverability=False), Length(max=254)])
    enabled = BooleanField("Enabled", default=True)
    billing_type = SelectField("Billing", choices=options([("prepaid", "Prepaid"), ("postpaid", "Postpaid")]))
    currency = currency_field()
    credit_limit = AmountField("Credit limit", minimum=0, default=0,
                               description="Postpaid only: how far below zero the balance may go.")
    opening_balance = AmountField("Opening balance", description="Written to the ledger as an 'initial' entry.")
    low_balance_alert = AmountField("Low-balance alert", description="Alert when the balance falls below; "
                                    "empty uses the default from the settings.")
    max_calls = optional_int("Max concurrent calls", description="All endpoints together; empty = no limit.")
    lcr_strategy = SelectField("Routing strategy", choices=options([
        ("cost", "Cost (cheapest first)"), ("quality", "Quality (ACD)"), ("reliability", "Reliability (ASR)"),
        ("equal", "Equal share"), ("priority", "Provider priority")]))
    allow_negative_margin = BooleanField("Allow routes that cost more than the sell rate")
    tax_rate = AmountField("Tax rate", minimum=0, maximum=1,
                           description="A fraction: 0.2 = 20 %. Empty uses the default from the settings.")
    daily_balance_email = BooleanField("Send a daily balance e-mail")
    # Legal data for invoices (0091).
    display_name = StringField("Display name", filters=OPTIONAL_TEXT_FILTERS, validators=[Optional(), Length(max=200)],
                               description="Shown on pages and invoices; spaces and accents are fine "
                                           "(Nordic Télécom AB). Empty = the name.")
    legal_name = StringField("Legal name", filters=OPTIONAL_TEXT_FILTERS, validators=[Optional(), Length(max=200)],
                             description="As registered; printed on invoices.")
    vat_id = StringField("VAT ID", filters=OPTIONAL_TEXT_FILTERS,
                         description="With its country prefix (SE556012345601). An EU VAT ID of another member "
                                     "state than yours makes invoices reverse charge (0 % VAT).")
    payment_terms_days = optional_int("Payment terms (days)", maximum=365,
                                      description="Due date = issue date + these days; empty uses the settings.")
    address = TextAreaField("Postal address", filters=OPTIONAL_TEXT_FILTERS, validators=[Optional(), Length(max=1000)],
                            render_kw={"rows": 4}, description="Printed under the legal name on invoices.")
    ratecard_1 = SelectField("Ratecard (priority 1)", coerce=int)
    ratecard_2 = SelectField("Ratecard (priority 2)", coerce=int)
    ratecard_3 = SelectField("Ratecard (priority 3)", coerce=int,
                             description="The first ratecard with a rate for the number prices the call.")
    submit = SubmitField("Save")

    RATECARD_FIELDS = ("ratecard_1", "ratecard_2", "ratecard_3")

    def set_ratecard_choices(self, ratecards) -> None:
        ratecards = list(ratecards)
        self.ratecard_currencies = {r.id: (r.name, r.currency) for r in ratecards}
        choices = options([(0, "— none —")] + [(r.id, f"{r.name} ({r.currency})") for r in ratecards])
        for name in self.RATECARD_FIELDS:
            self[name].choices = choices

    def validate_currency(self, field):
        # sell rates are in the customer's currency (0111): only the cost side is converted
        for ratecard_id in self.ratecard_ids():
            name, currency = getattr(self, "ratecard_currencies", {}).get(ratecard_id, (None, field.data))
            if currency != field.data:
                raise ValidationError(f"Ratecard {name} is in {currency}: a customer's ratecards must be in its "
                                      "currency (choose ratecards in this one, or change it).")

    def ratecard_ids(self) -> list[int]:
        return [self[name].data for name in self.RATECARD_FIELDS if self[name].data]

    def validate_vat_id(self, field):
        from ...invoices.legal import normalize_vat_id

        try:
            field.data = normalize_vat_id(field.data)
        except ValueError as exc:
            message = str(exc)
            raise ValidationError(message[:1].upper() + message[1:] + ".") from None

    def validate_credit_limit(self, field):
        if self.billing_type.data == "prepaid" and field.data:
            raise ValidationError("A prepaid customer has no credit limit: set 0 or choose postpaid.")

    def validate_tax_rate(self, field):
        if field.data is not None and field.data.as_tuple().exponent < -4:
            raise ValidationError("At most 4 decimal places.")

    def validate_ratecard_3(self, field):
        ids = self.ratecard_ids()
        if len(ids) != len(set(ids)):
            raise ValidationError("The same ratecard is chosen twice.")


class LedgerForm(FlaskForm):
    SIGNS = {"topup": 1, "payment": 1, "credit_note": 1, "adjustment": 0}
    LABELS = {"topup": "Top-up", "payment": "Payment received", "credit_note": "Credit note",
              "adjustment": "Adjustment (+ or −)"}
    kind = SelectField("Entry", choices=options(LABELS.items()))
    amount = AmountField("Amount", validators=[InputRequired(message="Enter an amount.")],
                         description="Top-ups, payments and credit notes are positive; an adjustment may be negative.")
    reference = StringField("Reference", filters=OPTIONAL_TEXT_FILTERS, validators=[Optional(), Length(max=100)],
                            description="Payment or credit note number.")
    note = StringField("Note", filters=OPTIONAL_TEXT_FILTERS, validators=[Optional(), Length(max=500)])
    submit = SubmitField("Post to ledger")

    def validate_amount(self, field):
        if field.data is None:
            return
        if field.data == 0:
            raise ValidationError("The amount must not be zero.")
        if self.SIGNS.get(self.kind.data) == 1 and field.data < 0:
            raise ValidationError("This entry credits the customer: enter a positive amount "
                                  "(use an adjustment to debit).")


# ------------------------------------------------------------------ endpoints

class EndpointForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int)
    name = name_field()
    enabled = BooleanField("Enabled", default=True)
    auth = SelectField("Authentication", choices=options([("ip", "IP address (trunk)"), ("sip", "SIP user and password")]))
    ip = StringField("Source IP or network", filters=OPTIONAL_TEXT_FILTERS,
                     description="IP authentication: e.g. 198.51.100.7 or 198.51.100.0/24. A range belongs to one "
                                 "customer; a customer's ranges may nest (the longest match takes the call).")
    username = StringField("SIP user name", filters=OPTIONAL_TEXT_FILTERS,
                           description="SIP authentication: the user the phone registers with.")
    new_password = StringField("SIP password", filters=OPTIONAL_TEXT_FILTERS,
                               validators=[Optional(), Length(min=8, max=128)],
                               description="SIP authentication: leave empty to keep the current one "
                                           "(a new endpoint gets a generated password).")
    permission_id = SelectField("Permission", coerce=int, description="Which destination classes it may call.")
    max_calls = optional_int("Max concurrent calls", description="Empty = no limit of its own.")
    spend_limit_month = AmountField("Spend limit per month", minimum=0, description="Empty = no limit.")
    strip_digits = IntegerField("Strip leading digits", default=0, validators=[InputRequired(), NumberRange(0, 20)])
    add_prefix = StringField("Then add prefix", default="", filters=[_strip, lambda v: v or ""],
                             validators=[Optional(), Regexp(r"^[0-9]{0,20}$", message="Digits only, at most 20.")],
                             description="Turns the dialled number into the canonical destination.")
    context = StringField("Dialplan context", default="default", filters=TEXT_FILTERS,
                          validators=[DataRequired(), Regexp(NAME_RE, message=NAME_ERROR)])
    codecs = StringField("Codecs", filters=OPTIONAL_TEXT_FILTERS,
                         validators=[Optional(), Regexp(CODECS_RE, message="A codec string such as PCMA,PCMU,G729.")],
                         description="Empty = switch default.")
    bypass_media = BooleanField("Bypass media")
    ignore_early_media = BooleanField("Ignore early media")
    submit = SubmitField("Save")

    def validate_ip(self, field):
        if self.auth.data != "ip":
            return
        if not field.data:
            raise ValidationError("IP authentication needs a source IP or network.")
        try:
            field.data = str(ipaddress.ip_network(field.data, strict=True))
        except ValueError:
            try:
                hint = ipaddress.ip_network(field.data, strict=False)
            except ValueError:
                raise ValidationError("Not an IP address or network (e.g. 198.51.100.0/24).") from None
            raise ValidationError(f"Host bits are set: did you mean {hint}?") from None

    def validate_username(self, field):
        if self.auth.data != "sip":
            return
        if not field.data:
            raise ValidationError("SIP authentication needs a user name.")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", field.data):
            raise ValidationError("Letters, digits and _ . + - only; at most 64.")


def _password_field():
    return PasswordField("New password", validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256,
                               message=f"At least {MIN_PASSWORD_LENGTH} and at most 256 characters.")],
                         description=f"At least {MIN_PASSWORD_LENGTH} characters.")


def _confirm_field():
    return PasswordField("Repeat the password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class PasswordForm(FlaskForm):
    password = _password_field()
    confirm = _confirm_field()
    submit = SubmitField("Set password")


class UserCreateForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int)
    email = EmailField("E-mail (login)", filters=TEXT_FILTERS,
                       validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    password = _password_field()
    confirm = _confirm_field()
    submit = SubmitField("Create user")


class UserEditForm(FlaskForm):
    email = EmailField("E-mail (login)", filters=TEXT_FILTERS,
                       validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    active = BooleanField("Active (may sign in)")
    submit = SubmitField("Save")


# ------------------------------------------------------------------ catalogue

class WeightForm(FlaskForm):
    name = name_field(description="A destination class such as local, mobile, international, premium.")
    submit = SubmitField("Save")


class PermissionForm(FlaskForm):
    name = name_field()
    weight_ids = SelectMultipleField("Weights it may call", coerce=int,
                                     description="Hold Ctrl (or ⌘) to choose several.")
    submit = SubmitField("Save")


class DestinationForm(FlaskForm):
    prefix = digits_field("Prefix", description="Country code and more, without + or 00; the longest prefix wins.")
    name = StringField("Name", filters=TEXT_FILTERS, validators=[DataRequired(), Length(max=200)])
    weight_id = SelectField("Weight (class)", coerce=int)
    submit = SubmitField("Save")


class RatecardForm(FlaskForm):
    name = name_field()
    currency = currency_field()
    submit = SubmitField("Save")

    # {customer name: currency} of the customers using this ratecard (set by the edit view)
    customer_currencies: dict = {}

    def validate_currency(self, field):
        others = sorted(name for name, currency in self.customer_currencies.items() if currency != field.data)
        if others:
            raise ValidationError(f"Used by {', '.join(others)}, who pay in another currency: a customer's ratecards "
                                  "must be in its currency.")


class RateForm(FlaskForm):
    """Sell rates (ratecards) and cost rates (providers) have the same columns."""
    prefix = digits_field("Prefix")
    rate = AmountField("Rate per minute", validators=[InputRequired(message="Enter a rate.")],
                       minimum=0, maximum=100000000)
    connect_fee = AmountField("Connect fee", minimum=0, maximum=100000000, default=0)
    min_duration = IntegerField("Minimum duration (s)", default=0, validators=[InputRequired(), NumberRange(0, 86400)])
    increment = IncrementField("Increment", default=(60, 60), description="first/next seconds: 60/60, 30/6, 1/1.")
    valid_from = LocalDateTimeField("Valid from")
    valid_to = LocalDateTimeField("Valid to")
    blocked = BooleanField("Blocked (calls to this prefix are refused)")
    submit = SubmitField("Save")

    def validate_valid_to(self, field):
        if field.data and self.valid_from.data and field.data <= self.valid_from.data:
            raise ValidationError("Must be after 'valid from'.")

    def rate_data(self) -> dict:
        data = form_data(self, "increment")
        data["increment_first"], data["increment_next"] = self.increment.data
        if data["connect_fee"] is None:
            data["connect_fee"] = 0
        return data


class RateChangeForm(FlaskForm):
    """A new version of a rate: its values from an effective date (the prefix stays)."""
    rate = AmountField("Rate per minute", validators=[InputRequired(message="Enter a rate.")],
                       minimum=0, maximum=100000000)
    connect_fee = AmountField("Connect fee", minimum=0, maximum=100000000, default=0)
    min_duration = IntegerField("Minimum duration (s)", default=0, validators=[InputRequired(), NumberRange(0, 86400)])
    increment = IncrementField("Increment", default=(60, 60), description="first/next seconds: 60/60, 30/6, 1/1.")
    blocked = BooleanField("Blocked (calls to this prefix are refused)")
    effective_from = LocalDateTimeField("Effective from", description="Empty = now. Now or later: the current "
                                        "version ends then, the new one starts then; calls before keep their rate.")
    valid_to = LocalDateTimeField("New version valid to", description="Empty = open.")
    submit = SubmitField("Save as a new version")

    def validate_valid_to(self, field):
        if field.data and self.effective_from.data and field.data <= self.effective_from.data:
            raise ValidationError("Must be after 'effective from'.")

    def values(self) -> dict:
        first, nxt = self.increment.data
        return {"rate": self.rate.data, "connect_fee": self.connect_fee.data or 0, "min_duration": self.min_duration.data,
                "increment_first": first, "increment_next": nxt, "blocked": self.blocked.data}


class RateEndForm(FlaskForm):
    at = LocalDateTimeField("End at", description="Empty = now. Calls from then on find a shorter prefix's "
                                                  "rate, or none.")
    submit = SubmitField("End this rate")


class ProviderForm(FlaskForm):
    name = name_field()
    enabled = BooleanField("Enabled", default=True)
    priority = IntegerField("Priority", default=1, validators=[InputRequired(), NumberRange(0, 1000)],
                            description="Used by the 'provider priority' strategy: lower goes first.")
    currency = currency_field()
    submit = SubmitField("Save")


class GatewayForm(FlaskForm):
    name = name_field(description="The sofia gateway name: " + NAME_HELP)
    enabled = BooleanField("Enabled", default=True)
    host = StringField("Host", filters=TEXT_FILTERS, validators=[
        DataRequired(), Regexp(r"^[A-Za-z0-9.:\[\]-]{1,253}$", message="A host name or IP address.")])
    port = IntegerField("Port", default=5060, validators=[InputRequired(), NumberRange(1, 65535)])
    transport = SelectField("Transport", choices=options([("udp", "UDP"), ("tcp", "TCP"), ("tls", "TLS")]))
    priority = IntegerField("Priority", default=1, validators=[InputRequired(), NumberRange(0, 1000)],
                            description="Order of this provider's gateways: lower goes first.")
    max_channels = optional_int("Max channels", minimum=1, description="Empty = no limit.")
    strip_digits = IntegerField("Strip leading digits", default=0, validators=[InputRequired(), NumberRange(0, 20)])
    add_prefix = StringField("Then add prefix", default="", filters=[_strip, lambda v: v or ""],
                             validators=[Optional(), Regexp(r"^[0-9]{0,20}$", message="Digits only, at most 20.")])
    codecs = StringField("Codecs", filters=OPTIONAL_TEXT_FILTERS,
                         validators=[Optional(), Regexp(CODECS_RE, message="A codec string such as PCMA,PCMU,G729.")])
    username = StringField("Registration user", filters=OPTIONAL_TEXT_FILTERS, validators=[
        Optional(), Regexp(r"^[A-Za-z0-9_.@+-]{1,64}$", message="Letters, digits and _ . @ + - only.")])
    password = StringField("Registration password", filters=OPTIONAL_TEXT_FILTERS, validators=[Optional(), Length(max=128)])
    register = BooleanField("Register with the carrier")
    bypass_media = BooleanField("Bypass media")
    ignore_early_media = BooleanField("Ignore early media")
    submit = SubmitField("Save")

    def validate_register(self, field):
        if field.data and not (self.username.data and self.password.data):
            raise ValidationError("Registration needs a user name and a password.")


class RoutingRuleForm(FlaskForm):
    customer_id = SelectField("Customer", coerce=int)
    prefix = digits_field("Prefix", description="Matched against the canonical destination; the longest rule wins.")
    provider_ids = SelectMultipleField("Only these providers", coerce=int,
                                       description="Hold Ctrl (or ⌘) to choose several.")
    submit = SubmitField("Save")

    def validate_provider_ids(self, field):
        if not field.data:
            raise ValidationError("Choose at least one provider.")


class SettingsForm(FlaskForm):
    currency = currency_field("Default currency")
    max_call_seconds = IntegerField("Maximum call length (s)", validators=[InputRequired(), NumberRange(1, 604800)],
                                    description="Caps max_duration of every call; 14400 = 4 hours.")
    sip_domain = StringField("SIP domain", filters=TEXT_FILTERS, validators=[
        DataRequired(), Regexp(r"^[A-Za-z0-9.-]{1,253}$", message="A domain name such as sip.example.net.")])
    hold_grace_seconds = IntegerField("Hold grace (s)", validators=[InputRequired(), NumberRange(0, 86400)],
                                      description="How long after its grant runs out a call's hold is swept.")
    quota_seconds = IntegerField("Credit quota (s)", validators=[Optional(), NumberRange(2, 604800)],
                                 description="Seconds of credit a call holds at a time; the switch asks for more "
                                             "before they run out. Empty = hold the whole call length at set-up.")
    reauth_margin_seconds = IntegerField("Re-authorization margin (s)",
                                         validators=[InputRequired(), NumberRange(1, 3600)],
                                         description="How long before a grant runs out the switch asks for the next.")
    ring_timeout_seconds = IntegerField("Ring timeout per route (s)", validators=[InputRequired(), NumberRange(5, 600)],
                                        description="How long one carrier may ring before the next is tried.")
    default_tax_rate = AmountField("Default tax rate", validators=[InputRequired()], minimum=0, maximum=1,
                                   description="A fraction: 0.2 = 20 %.")
    low_balance_default = AmountField("Default low-balance alert",
                                      description="For customers without their own threshold; empty = no alert.")
    company_name = StringField("Company name", filters=TEXT_FILTERS, validators=[DataRequired(), Length(max=200)])
    company_address = TextAreaField("Company address", filters=TEXT_FILTERS, validators=[Length(max=1000)])
    company_vat_id = StringField("VAT id", filters=TEXT_FILTERS, validators=[Length(max=50)])
    company_email = EmailField("Company e-mail", filters=TEXT_FILTERS,
                               validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    company_registration = TextAreaField("Company registration", filters=TEXT_FILTERS, validators=[Length(max=1000)],
                                         description="Legal form, registration number, share capital: printed "
                                                     "on invoices under the company's address.")
    company_bank_details = TextAreaField("Bank details", filters=TEXT_FILTERS, validators=[Length(max=1000)],
                                         description="IBAN and BIC: printed on invoices and payment reminders.")
    payment_terms_days = IntegerField("Payment terms (days)", default=30,
                                      validators=[InputRequired(), NumberRange(0, 365)],
                                      description="Due date = issue date + these days, unless the customer has "
                                                  "its own terms.")
    reminder_interval_days = IntegerField("Reminder interval (days)", default=14,
                                          validators=[InputRequired(), NumberRange(0, 365)],
                                          description="A reminder e-mail when an invoice is overdue, then every "
                                                      "so many days while it is open; 0 = no reminders.")
    invoice_footer = TextAreaField("Invoice footer", filters=TEXT_FILTERS, validators=[Length(max=2000)])
    company_logo = StringField("Invoice logo", filters=TEXT_FILTERS, validators=[Regexp(
        r"^(([A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.(png|svg|jpg|jpeg))?$",
        message="A file under static/, such as img/logo.svg (PNG, JPEG or SVG).")],
        description="A file under static/ (PDFs never fetch from the network); empty = the company name only.")
    staff_two_factor_required = BooleanField(
        "Staff must use two-factor sign-in",
        description="Admins, finance and support must set up an authenticator app before the back office opens.")
    submit = SubmitField("Save settings")

    def validate_company_logo(self, field):
        from flask import current_app  # the static folder of this deployment

        if field.data and not (Path(current_app.static_folder) / field.data).is_file():
            raise ValidationError(f"There is no file static/{field.data}.")

    def validate_reauth_margin_seconds(self, field):
        if self.quota_seconds.data is not None and field.data is not None and field.data >= self.quota_seconds.data:
            raise ValidationError("The margin must be shorter than the quota.")

    def validate_default_tax_rate(self, field):
        if field.data is not None and field.data.as_tuple().exponent < -4:
            raise ValidationError("At most 4 decimal places.")


# ------------------------------------------------------------------ staff

STAFF_ROLE_CHOICES = [("support", "Support: read-only, looks up customers and their calls"),
                      ("finance", "Finance: money, invoices, reports; no routing"),
                      ("admin", "Admin: everything, staff included")]


class StaffCreateForm(FlaskForm):
    email = EmailField("E-mail (login)", filters=TEXT_FILTERS,
                       validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    role = SelectField("Role", choices=options(STAFF_ROLE_CHOICES), default="support")
    password = _password_field()
    confirm = _confirm_field()
    submit = SubmitField("Create staff member")


class StaffEditForm(FlaskForm):
    role = SelectField("Role", choices=options(STAFF_ROLE_CHOICES))
    active = BooleanField("Active (may sign in)", description="Disabling signs them out at once.")
    submit = SubmitField("Save")
