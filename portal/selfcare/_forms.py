"""Self-care forms. Filter forms are GET forms (no CSRF token: they change nothing);
every POST form is a FlaskForm with CSRF."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional, Regexp, ValidationError

from ..choices import options
from ..customers.services import parse_threshold
from ..endpoints.services import SIP_PASSWORD_MAX, sip_password_problem
from ..forms import parsed
from ..security import MIN_PASSWORD_LENGTH
from ..validators import sane_date


class _GetForm(FlaskForm):
    class Meta:
        csrf = False


def _check_range(form):
    if form.date_from.data and form.date_to.data and form.date_to.data < form.date_from.data:
        form.date_to.errors.append("The end date is before the start date.")
        return False
    return True


class LedgerFilterForm(_GetForm):
    date_from = DateField("From", validators=[Optional(), sane_date])
    date_to = DateField("To", validators=[Optional(), sane_date])
    kind = SelectField("Kind", choices=options([("", "All entries"), ("charges", "Call charges"),
                                                 ("payments", "Payments"), ("credit_notes", "Credit notes"),
                                                 ("adjustments", "Adjustments")]),
                       validators=[Optional()], default="")
    view = SelectField("Show", choices=options([("entries", "Every entry"), ("days", "One line per day")]),
                       validators=[Optional()], default="entries")

    def validate(self, extra_validators=None):
        return all([super().validate(extra_validators), _check_range(self)])


class CdrFilterForm(_GetForm):
    date_from = DateField("From", validators=[Optional(), sane_date])
    date_to = DateField("To", validators=[Optional(), sane_date])
    endpoint_id = SelectField("Endpoint", coerce=str, validators=[Optional()], default="")
    prefix = StringField("Destination starts with", validators=[
        Optional(), Regexp(r"^\+?[0-9]{1,20}$", message="Digits only, e.g. 336.")])
    number = StringField("Number", validators=[
        Optional(), Regexp(r"^\+?[0-9]{1,20}$", message="Digits, optionally with a leading +.")])
    number_in = SelectField("Search in", choices=options([("either", "Caller or destination"),
                                                         ("destination", "Destination"), ("caller", "Caller ID")]),
                            validators=[Optional()], default="either")
    match = SelectField("Match", choices=options([("prefix", "Starts with"), ("contains", "Contains (31 days)")]),
                        validators=[Optional()], default="prefix")
    answered = SelectField("Answered", choices=options([("", "All calls"), ("yes", "Answered"), ("no", "Not answered")]),
                           validators=[Optional()], default="")

    def validate(self, extra_validators=None):
        return all([super().validate(extra_validators), _check_range(self)])


class RateSearchForm(_GetForm):
    q = StringField("Prefix, number or destination", validators=[Optional(), Length(max=100)])


class SipPasswordForm(FlaskForm):
    password = PasswordField("New SIP password", validators=[InputRequired(), Length(max=SIP_PASSWORD_MAX)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat the new password", validators=[
        InputRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Change SIP password")

    def __init__(self, *args, username=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._username = username

    def validate_password(self, field):
        problem = sip_password_problem(field.data or "", self._username)
        if problem:
            raise ValidationError(problem)


class AlertSettingsForm(FlaskForm):
    low_balance_alert = StringField(
        "Low-balance alert below", validators=[Optional(), Length(max=30)],
        description="An e-mail is sent once when your balance falls below this amount. Empty: no alert.")
    email = StringField("Alert e-mail address", validators=[
        Optional(), Length(max=254), Email(check_deliverability=False, message="Enter an e-mail address like billing@example.com (one only).")],
        description="One address. A new one gets a confirmation link first; mail goes there once it is opened.",
        render_kw={"autocomplete": "email"})
    daily_balance_email = BooleanField("Send me my balance by e-mail every day")
    submit = SubmitField("Save settings")

    def validate_low_balance_alert(self, field):
        parsed(parse_threshold, field.data)


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[InputRequired(), Length(max=256)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("New password", validators=[
        InputRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256,
                                message=f"Use at least {MIN_PASSWORD_LENGTH} characters.")],
        description=f"At least {MIN_PASSWORD_LENGTH} characters.", render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat the new password", validators=[
        InputRequired(), EqualTo("new_password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Change password")
