"""Invoices (postpaid), statements (prepaid) and credit notes.

`services` builds and issues documents, `numbering` hands out gap-free numbers,
`pdf` renders them with WeasyPrint. Rules: docs/invoices.md.
"""


class InvoiceError(ValueError):
    """A document operation that must not happen; the message says why."""
