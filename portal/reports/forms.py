from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.validators import Optional, ValidationError

from .services import DIMENSIONS, MAX_DAYS
from ..choices import options
from ..validators import sane_date


class ReportForm(FlaskForm):
    class Meta:
        csrf = False

    dimension = SelectField("Group by", choices=options(DIMENSIONS.items()), default="day")
    date_from = DateField("From", validators=[Optional(), sane_date])
    date_to = DateField("To", validators=[Optional(), sane_date])
    customer_id = SelectField("Customer", coerce=str, default="")

    def validate_date_to(self, field):
        if field.data and self.date_from.data:
            if field.data < self.date_from.data:
                raise ValidationError("the end is before the start")
            if (field.data - self.date_from.data).days + 1 > MAX_DAYS:
                raise ValidationError(f"at most {MAX_DAYS} days")
