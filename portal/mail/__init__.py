"""Outgoing e-mail through a database outbox.

Senders call `outbox.enqueue` inside the transaction that causes the mail; the
`mail_delivery` job (`delivery.deliver_due`) sends with smtplib, retries with backoff
and leaves a message 'failed' for admins after max_attempts. Nothing is sent from a
web request, and nothing is lost when the SMTP server is down. See docs/jobs.md.
"""
