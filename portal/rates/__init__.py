"""Sell rates as a customer is charged them: the rate that applies per prefix of the
customer's rate plans, the price of one number, and their CSV."""
