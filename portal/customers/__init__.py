"""Customers: funds (balance, credit, money held by calls in progress), the calls in
progress themselves, and the account settings a customer may change."""
