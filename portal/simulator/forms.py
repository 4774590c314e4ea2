from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class SimulatorForm(FlaskForm):
    """GET form: a simulation changes nothing, so it is a shareable URL without CSRF."""

    class Meta:
        csrf = False

    endpoint_id = SelectField("Endpoint", coerce=str, default="",
                              description="Fills the source from the endpoint (its IP, or its SIP user).")
    source_ip = StringField("Source IP", validators=[Optional(), Length(max=45)], render_kw={"placeholder": "198.51.100.7"})
    sip_user = StringField("SIP user", validators=[Optional(), Length(max=64)], render_kw={"placeholder": "acme100"})
    caller_id = StringField("Caller ID", validators=[Optional(), Length(max=32)], render_kw={"placeholder": "33123456789"})
    destination = StringField("Number dialled", validators=[DataRequired("type the number to dial"), Length(max=64)],
                              render_kw={"placeholder": "+33612345678"})
