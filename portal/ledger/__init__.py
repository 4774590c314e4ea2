"""The ledger: the only way a balance changes (posting), and the customer's history
with the balance after each entry (reading)."""
