from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateTimeLocalField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Optional, Regexp

from ..choices import options
from .services import FIELDS

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
    effective_from = DateTimeLocalField("Effective from", format="%Y-%m-%dT%H:%M", validators=[DataRequired()],
                                        description="New rates start then; the rates they replace end then (UTC).")
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


class ExportForm(FlaskForm):
    class Meta:
        csrf = False

    source = SelectField("Export the current rates of", validators=[DataRequired()])
