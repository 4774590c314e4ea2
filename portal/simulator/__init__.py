"""Routing simulator: what happens if this source dials this number (billing.route_preview)."""
