"""Mail settings and failures in words, and a test e-mail sent at once.

A failed delivery is stored as `<ExceptionType>: <message>` (portal/mail/delivery.py),
which is exact but says nothing to an operator (`ConnectionRefusedError: [Errno 111]
Connection refused`). `explain()` turns it into what failed and what to set; pages show
that, with the raw text beside it.
"""
from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

DEFAULT_HOST = "127.0.0.1"
SETTINGS_HINT = ("Set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS, MAIL_FROM) in the "
                 "portal's environment and restart it (docs/jobs.md).")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    starttls: bool
    mail_from: str
    configured: bool        # SMTP_HOST was set; otherwise a local mail server is assumed

    def __str__(self) -> str:
        parts = [f"{self.host}:{self.port}"]
        if self.starttls:
            parts.append("STARTTLS")
        if self.user:
            parts.append(f"user {self.user}")
        return ", ".join(parts) + f", from {self.mail_from}"


def settings(config) -> SmtpSettings:
    host = config.get("SMTP_HOST") or None
    return SmtpSettings(host=host or DEFAULT_HOST, port=int(config.get("SMTP_PORT") or 25),
                        user=config.get("SMTP_USER") or None, starttls=bool(config.get("SMTP_STARTTLS")),
                        mail_from=config.get("MAIL_FROM") or "billing@localhost", configured=bool(host))


def explain(error: str | None, config) -> str | None:
    """What a stored delivery error means, in words, and what to change."""
    if not error:
        return None
    s = settings(config)
    where = f"{s.host}:{s.port}"
    kind, _, detail = error.partition(": ")
    lowered = error.lower()
    if kind == "ConnectionRefusedError" or "errno 111" in lowered or "connection refused" in lowered:
        if not s.configured:
            return (f"SMTP is not configured: no mail server answers at {where}, the default used while "
                    f"SMTP_HOST is unset. {SETTINGS_HINT}")
        return (f"No mail server answers at {where} (connection refused). Check that it runs and that "
                "SMTP_HOST and SMTP_PORT are right.")
    if kind == "gaierror" or "name or service not known" in lowered or "errno -2" in lowered or "errno -3" in lowered:
        return f"The mail server name {s.host} cannot be resolved. Check SMTP_HOST."
    if kind in ("TimeoutError", "timeout", "socket.timeout") or "timed out" in lowered:
        return (f"The mail server at {where} did not answer in time. Check SMTP_HOST, SMTP_PORT and the "
                "firewall between the portal and the mail server.")
    if kind in ("OSError", "ConnectionResetError", "SMTPServerDisconnected") and (
            "unreachable" in lowered or "reset" in lowered or "disconnected" in lowered or "closed" in lowered):
        return f"The connection to the mail server at {where} broke off: {detail or error}."
    if kind == "SMTPAuthenticationError":
        return "The mail server refused the user name or password. Check SMTP_USER and SMTP_PASSWORD."
    if kind == "SMTPNotSupportedError" and "auth" in lowered:
        return ("The mail server does not accept a login on this connection. Set SMTP_STARTTLS=1 if it needs "
                "TLS first, or leave SMTP_USER empty.")
    if kind == "SMTPNotSupportedError" or "starttls extension not supported" in lowered:
        return "The mail server does not offer STARTTLS. Set SMTP_STARTTLS=0, or use the server's TLS port."
    if kind.startswith("SSL") or "certificate" in lowered:
        return f"The TLS handshake with {where} failed ({detail or error}). Check the server's certificate."
    if kind == "SMTPSenderRefused":
        return f"The mail server refused the sender address {s.mail_from}. Check MAIL_FROM."
    if kind == "SMTPRecipientsRefused":
        return "The mail server refused the recipient address. Check the customer's e-mail address."
    code = re.search(r"\((\d{3}),", error)
    if code:
        return f"The mail server answered {code.group(1)}: {detail}"
    return f"Sending failed: {error}"


def send_test(config, to_addr: str) -> str:
    """Send one short message now (not through the outbox); returns what was used.
    Raises the smtplib / socket error as it comes: the caller explains it."""
    s = settings(config)
    message = EmailMessage()
    message["From"] = s.mail_from
    message["To"] = to_addr
    message["Subject"] = "Test e-mail from the VoIP billing portal"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring="smtptest")
    message.set_content(f"This test e-mail went through {s}.\nInvoices, alerts and daily balances use the same "
                        "settings.\n")
    with smtplib.SMTP(s.host, s.port, timeout=config.get("SMTP_TIMEOUT", 15)) as smtp:
        if s.starttls:
            smtp.starttls()
        if s.user:
            smtp.login(s.user, config.get("SMTP_PASSWORD") or "")
        smtp.send_message(message)
    return str(s)
