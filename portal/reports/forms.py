from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.validators import Optional, ValidationError

from .services import DIMENSIONS, MAX_DAYS
from ..choices import options


class ReportForm(FlaskForm):
    class Meta:
        csrf = False

    dimension = SelectField("Group by", choices=options(DIMENSIONS.items()), default="day")
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    customer_id = SelectField("Customer", coerce=str, default="")
    currency = SelectField("Currency", coerce=str, default="", validate_choice=False,
                           description="Customers paying in this currency (amounts are never added across currencies).")

    def validate_date_to(self, field):
        if field.data and self.date_from.data:
            if field.data < self.date_from.data:
                raise ValidationError("the end is before the start")
            if (field.data - self.date_from.data).days + 1 > MAX_DAYS:
                raise ValidationError(f"at most {MAX_DAYS} days")
