"""Exchange rates between currencies: services used by the back office, the CSV import
and the provisioning file (docs/billing.md, "Currencies")."""
