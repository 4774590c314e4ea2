"""Re-rating a period from the back office: preview, then apply in the background."""
