from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length

from ..security import MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    remember = BooleanField("Keep me signed in", description="For two weeks on this browser.")
    submit = SubmitField("Sign in")


class LogoutForm(FlaskForm):
    submit = SubmitField("Sign out")


class ActionForm(FlaskForm):
    """A POST button that carries only the CSRF token."""
    submit = SubmitField("Confirm")


class SecondFactorForm(FlaskForm):
    code = StringField("Code from your authenticator app", validators=[InputRequired(), Length(max=20)],
                       description="Six digits. Lost your phone? Type one of your recovery codes instead.",
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True})
    submit = SubmitField("Verify")


class ForgotPasswordForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
                       render_kw={"autocomplete": "username"})
    submit = SubmitField("Send me a link")


def _new_password(label: str = "New password"):
    return PasswordField(label, validators=[
        InputRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256, message=f"Use at least {MIN_PASSWORD_LENGTH} characters.")],
        description=f"At least {MIN_PASSWORD_LENGTH} characters.", render_kw={"autocomplete": "new-password"})


def _confirm(field: str):
    return PasswordField("Repeat the new password", validators=[
        InputRequired(), EqualTo(field, message="The two passwords differ.")], render_kw={"autocomplete": "new-password"})


class ResetPasswordForm(FlaskForm):
    new_password = _new_password()
    confirm = _confirm("new_password")
    submit = SubmitField("Set the new password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[InputRequired(), Length(max=256)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = _new_password()
    confirm = _confirm("new_password")
    submit = SubmitField("Change password")


class TwoFactorConfirmForm(FlaskForm):
    code = StringField("Code shown by the app", validators=[InputRequired(), Length(max=20)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField("Turn on two-factor sign-in")


class TwoFactorDisableForm(FlaskForm):
    password = PasswordField("Your password", validators=[InputRequired(), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    code = StringField("Code from the app (or a recovery code)", validators=[InputRequired(), Length(max=20)],
                       render_kw={"autocomplete": "one-time-code"})
    submit = SubmitField("Turn off two-factor sign-in")


class RecoveryCodesForm(FlaskForm):
    password = PasswordField("Your password", validators=[InputRequired(), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Make new recovery codes")
