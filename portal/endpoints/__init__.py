"""Endpoints: how a customer's calls are recognised (IP trunks and SIP accounts), and
the rules of SIP passwords."""
