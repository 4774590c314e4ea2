"""Webhooks: events sent to the operator's HTTPS endpoint, signed, through the outbox.

An event (balance.low, invoice.issued, payment.posted, cdr.unrated) is queued in the
same transaction as the change that causes it, as a row of the outbox the e-mails use
(billing.mail_outbox, channel 'webhook'), so it is never lost and never sent for a
change that rolled back; the `webhooks` job sends it with retries and backoff.
docs/api.md, "Webhooks", says how to verify a signature.
"""
