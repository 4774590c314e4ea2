"""Configuration as code (CONTRACT 3): load and dump the provisioning YAML.

    from portal.provisioning import load_file, dump_text, ProvisioningError

Format, upsert rules and decisions: docs/provisioning.md.
"""
from .dumper import dump_text
from .errors import ProvisioningError
from .loader import Summary, load_document, load_file, load_text

__all__ = ["ProvisioningError", "Summary", "dump_text", "load_document", "load_file", "load_text"]
