"""Legal data on invoices: VAT IDs, the tax treatment (rate or EU reverse charge), due
dates. Rules: docs/invoices.md, "Legal data and tax"; rounding: docs/rounding.md."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

# Member states by the prefix of their VAT IDs (Greece writes EL; GR is accepted).
EU_VAT_COUNTRIES = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
                              "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
VAT_ID_RE = re.compile(r"^[A-Z]{2}[0-9A-Z+*]{2,12}$")
REVERSE_CHARGE_NOTE = ("Reverse charge: VAT is to be accounted for by the recipient "
                       "(Article 196, Council Directive 2006/112/EC).")


def normalize_vat_id(text: str | None) -> str | None:
    """'se 5560-1234.56 01' -> 'SE556012345601'; None or blank -> None.
    Raises ValueError when it cannot be a VAT ID."""
    if text is None or not text.strip():
        return None
    value = re.sub(r"[\s.\-]", "", text).upper()
    if value.startswith("GR"):
        value = "EL" + value[2:]
    if not VAT_ID_RE.match(value):
        raise ValueError("a VAT ID is the country's two letters and 2 to 12 letters or digits, e.g. SE556012345601")
    return value


def vat_country(vat_id: str | None) -> str | None:
    """The country prefix of an EU VAT ID, None for no ID or a non-EU one."""
    if not vat_id:
        return None
    prefix = vat_id[:2].upper()
    prefix = "EL" if prefix == "GR" else prefix
    return prefix if prefix in EU_VAT_COUNTRIES else None


@dataclass(frozen=True)
class TaxTreatment:
    rate: Decimal
    reverse_charge: bool
    note: str | None

    def label(self) -> str:
        from .services import percent

        return f"VAT {percent(self.rate)}" + (" (reverse charge)" if self.reverse_charge else "")


def tax_treatment(seller_vat_id: str | None, buyer_vat_id: str | None, rate: Decimal) -> TaxTreatment:
    """EU reverse charge when both parties have VAT IDs of two different member states
    (a B2B supply of services across an EU border): 0 % with the legal mention.
    Otherwise `rate` (the customer's, else the settings' default)."""
    seller, buyer = vat_country(seller_vat_id), vat_country(buyer_vat_id)
    if seller and buyer and seller != buyer:
        return TaxTreatment(Decimal("0"), True, REVERSE_CHARGE_NOTE)
    return TaxTreatment(Decimal(rate), False, None)


def due_date(issue_day: date, terms_days: int) -> date:
    """Due `terms_days` calendar days after the issue date (0 = on receipt)."""
    return issue_day + timedelta(days=terms_days)


def customer_snapshot(customer) -> dict:
    """The customer's legal data as printed on a document built now."""
    return {"name": customer.name, "display_name": customer.label, "legal_name": customer.legal_name,
            "address": customer.address, "vat_id": customer.vat_id}
