"""The one exception of provisioning: every message starts with the path in the file."""
from __future__ import annotations


class ProvisioningError(ValueError):
    """A file that cannot be loaded. `errors` lists every problem found, each like
    `customers[1].endpoints[0].ip: not a CIDR`; nothing was changed."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))
