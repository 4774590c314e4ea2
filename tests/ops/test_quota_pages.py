"""What people see of credit in quotas (CONTRACT 1b): the grants of calls in progress
(back office and self care), the calls to review in the CDR browser and on the
dashboard, prepaid customers a re-rate took below zero."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from portal.extensions import db
from portal.models import CallHold
from tests import factories
from tests.conftest import CUSTOMER_PASSWORD, login
from tests.ops.conftest import insert_cdr


def _hold(customer, endpoint, uuid, granted, grants=1, amount="0.10"):
    now = datetime.now(timezone.utc)
    db.session.add(CallHold(call_uuid=uuid, customer_id=customer.id, endpoint_id=endpoint.id, amount=Decimal(amount),
                            sell_rate=Decimal("0.02"), max_duration=14400, granted_seconds=granted, grants=grants,
                            destination="33123456789", expires_at=now + timedelta(minutes=10)))
    db.session.flush()


def test_calls_in_progress_show_their_grant(admin_client, db_session, world):
    customer, endpoint = world["acme"], world["ep_acme"]
    _hold(customer, endpoint, "granted-twice", 600, grants=2, amount="0.20")
    html = admin_client.get(f"/admin/customers/{customer.id}").get_data(as_text=True)
    assert "Granted" in html and "10:00" in html and "2 grants" in html
    assert "4:00:00" in html                                    # max duration, for comparison
    dashboard = admin_client.get("/admin/").get_data(as_text=True)
    assert "granted-twice" not in dashboard and "10:00" in dashboard


def test_self_care_shows_what_is_covered_so_far(client, db_session, world):
    customer, endpoint = world["acme"], world["ep_acme"]
    factories.user("ops@acme.example", CUSTOMER_PASSWORD, role="customer", customer=customer)
    _hold(customer, endpoint, "mine", 300, amount="0.10")
    login(client, "ops@acme.example", CUSTOMER_PASSWORD)
    html = client.get("/my/").get_data(as_text=True)
    assert "Covered so far" in html and "5:00" in html


def test_the_cdr_browser_lists_the_calls_to_review(admin_client, db_session, world, pg):
    acme = world["acme"]
    plain = insert_cdr(pg, customer_id=acme.id, uuid="plain")
    over = insert_cdr(pg, customer_id=acme.id, uuid="over", overrun_seconds=1, held_seconds=960)
    bare = insert_cdr(pg, customer_id=acme.id, uuid="bare", no_hold=True)
    long_ = insert_cdr(pg, customer_id=acme.id, uuid="long", no_hold=True, absurd_duration=True, overrun_seconds=72000)
    html = admin_client.get("/admin/cdrs?review=yes&date_from=2026-03-01&date_to=2026-03-31").get_data(as_text=True)
    shown = {i for i in (plain, over, bare, long_) if f'data-cdr-id="{i}"' in html}
    assert shown == {over, bare, long_}
    assert "1 s overrun" in html and "no hold" in html and "too long" in html
    export = admin_client.get("/admin/cdrs/export.csv?review=yes&date_from=2026-03-01&date_to=2026-03-31").get_data(as_text=True)
    header = export.splitlines()[0].split(",")
    assert {"held_seconds", "overrun_seconds", "no_hold", "absurd_duration"} <= set(header)
    assert len([line for line in export.splitlines()[1:] if line and not line.startswith("#")]) == 3


def test_the_dashboard_counts_calls_to_review_and_prepaid_below_zero(admin_client, db_session, world, pg):
    acme = world["acme"]
    insert_cdr(pg, customer_id=acme.id, start_stamp=datetime.now(timezone.utc) - timedelta(days=1),
               overrun_seconds=2)
    broke = factories.customer(name="broke", balance="0")
    factories.topup(broke, "-1.25", kind="adjustment")
    html = admin_client.get("/admin/").get_data(as_text=True)
    assert 'data-to-review>1<' in html
    assert "Prepaid below zero" in html and "broke" in html and "-1.25 EUR" in html


def test_a_rerate_taking_a_prepaid_customer_below_zero_raises_the_alert(db_session, pg, world):
    """No threshold configured: for a prepaid customer, zero is one (docs/billing.md)."""
    from tests.billing.conftest import cdr_row, insert_cdr as insert_raw

    customer = factories.customer(name="tight", balance="0.05", ratecards=[world["card"]])
    endpoint = factories.endpoint(customer, world["perm"], ip="192.0.2.77/32")
    row = cdr_row(None, billsec=60, billing_customer_id=customer.id, billing_endpoint_id=endpoint.id,
                  billing_provider_id=world["carrier_a"].id, billing_gateway="gw_a1", destination="33123456789")
    insert_raw(pg, row)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = rate * 100 WHERE ratecard_id = %s", (world["card"].id,))
        cur.execute("SELECT * FROM billing_private.rerate(%s, %s, %s)",
                    (row["start_stamp"] - timedelta(hours=1), row["start_stamp"] + timedelta(hours=1), customer.id))
        cur.execute("SELECT balance FROM billing.customers WHERE id = %s", (customer.id,))
        assert cur.fetchone()[0] < 0
        cur.execute("SELECT kind, threshold FROM billing.balance_events WHERE customer_id = %s", (customer.id,))
        assert cur.fetchall() == [("low_balance", Decimal("0"))]
