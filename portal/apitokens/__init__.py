"""API tokens: issued and revoked by admins (portal/admin/api_tokens.py), checked and
counted on every request of the REST API (portal/api)."""
