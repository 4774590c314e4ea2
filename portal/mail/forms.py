from flask_wtf import FlaskForm
from wtforms import EmailField, SubmitField
from wtforms.validators import DataRequired, Email, Length


class TestMailForm(FlaskForm):
    """Send one test e-mail now with the portal's SMTP settings."""

    to_addr = EmailField("Send a test e-mail to", validators=[DataRequired("type an e-mail address"), Email(),
                                                              Length(max=254)])
    submit = SubmitField("Send test e-mail")
