from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, Regexp, ValidationError

from ..choices import options


class CdrFilterForm(FlaskForm):
    """GET filter form of the CDR browser (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    number = StringField("Number", validators=[Optional(), Regexp(r"^\+?[0-9]{1,20}$",
                                                                  message="digits, optionally with a leading +")],
                         render_kw={"placeholder": "+4670 or 336123"})
    number_in = SelectField("Search in", choices=options([("either", "Caller or destination"),
                                                         ("destination", "Destination"), ("caller", "Caller")]),
                            default="either")
    match = SelectField("Match", choices=options([("prefix", "Starts with"), ("contains", "Contains (31 days)")]),
                        default="prefix")
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    customer_id = SelectField("Customer", coerce=str, default="")
    endpoint_id = SelectField("Endpoint", coerce=str, default="")
    provider_id = SelectField("Provider", coerce=str, default="")
    gateway = SelectField("Gateway", coerce=str, default="")
    prefix = StringField("Destination prefix", validators=[Optional(), Regexp(r"^[0-9]{1,20}$", message="digits only")])
    hangup_cause = StringField("Hangup cause", validators=[Optional(), Length(max=64),
                                                           Regexp(r"^[A-Z_0-9]+$", message="a cause name like NORMAL_CLEARING")])
    answered = SelectField("Answered", choices=options([("", "Any"), ("yes", "Answered"), ("no", "Not answered")]), default="")
    status = SelectField("Rating", choices=options([("", "Any"), ("rated", "Rated"), ("unrated", "Unrated")]), default="")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("the end is before the start")
