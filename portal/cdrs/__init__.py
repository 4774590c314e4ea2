"""Rated calls: pages, totals and exports for staff and for one customer; unrated raw CDRs and re-rating."""
