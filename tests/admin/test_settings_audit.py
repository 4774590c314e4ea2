"""Settings form and the audit log page."""
from decimal import Decimal

from portal import audit
from portal.extensions import db
from portal.models import Settings
from tests.admin.conftest import audit_rows, field_error

SETTINGS = {"currency": "EUR", "max_call_seconds": "7200", "sip_domain": "sip.acme.example", "hold_grace_seconds": "120",
            "default_tax_rate": "0.2", "low_balance_default": "5", "company_name": "Acme Telecom",
            "company_address": "1 Main St", "company_vat_id": "FR123", "company_email": "billing@acme.example",
            "invoice_footer": "Thanks", "quota_seconds": "300", "reauth_margin_seconds": "10",
            "ring_timeout_seconds": "60", "payment_terms_days": "30", "reminder_interval_days": "14"}


def test_settings_are_saved_and_audited(admin_client, db_session):
    assert 'value="14400"' in admin_client.get("/admin/settings").get_data(as_text=True)
    assert admin_client.post("/admin/settings", data=SETTINGS).status_code == 302
    db.session.expire_all()
    s = Settings.get()
    assert (s.max_call_seconds, s.sip_domain, s.default_tax_rate, s.low_balance_default) == \
        (7200, "sip.acme.example", Decimal("0.2"), Decimal("5"))
    [row] = audit_rows("settings", "update")
    assert row.details["max_call_seconds"] == [14400, 7200] and "currency" not in row.details


def test_credit_quota_settings(admin_client, db_session):
    """Credit in quotas (CONTRACT 1b): the quota may be empty (hold the whole call), the
    margin must be shorter than the quota."""
    html = admin_client.post("/admin/settings", data={**SETTINGS, "quota_seconds": "60",
                                                      "reauth_margin_seconds": "60"}).get_data(as_text=True)
    assert "shorter than the quota" in field_error(html, "reauth_margin_seconds")
    assert admin_client.post("/admin/settings", data={**SETTINGS, "quota_seconds": "",
                                                      "ring_timeout_seconds": "45"}).status_code == 302
    db.session.expire_all()
    s = Settings.get()
    assert (s.quota_seconds, s.reauth_margin_seconds, s.ring_timeout_seconds) == (None, 10, 45)


def test_settings_validation(admin_client, db_session):
    html = admin_client.post("/admin/settings", data={**SETTINGS, "max_call_seconds": "0", "sip_domain": "bad domain",
                                                      "default_tax_rate": "0.12345"}).get_data(as_text=True)
    assert field_error(html, "max_call_seconds") and "domain name" in field_error(html, "sip_domain")
    assert "4 decimal places" in field_error(html, "default_tax_rate")
    db.session.expire_all()
    assert Settings.get().max_call_seconds == 14400 and audit_rows("settings") == []


def test_audit_log_filters_and_pagination(app, admin_client, db_session, monkeypatch):
    for i in range(3):
        audit.record("create", "weight", i, actor="alice@example.net", name=f"w{i}")
    audit.record("delete", "ratecard", 7, actor="bob@example.net", name="old")
    db.session.flush()
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    html = admin_client.get("/admin/audit?entity=weight").get_data(as_text=True)
    assert "3 in all" in html and "alice@example.net" in html and "bob@example.net" not in html.split("<tbody>")[1]
    html = admin_client.get("/admin/audit?actor=bob").get_data(as_text=True)
    assert "1 in all" in html and "ratecard" in html
    html = admin_client.get("/admin/audit?entity=weight&entity_id=1").get_data(as_text=True)
    assert "1 in all" in html and "w1" in html
    assert "Audit" in admin_client.get("/admin/settings").get_data(as_text=True)
