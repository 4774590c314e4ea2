"""CDR browser: filters, keyset pagination, totals, streaming CSV export, re-rating."""
