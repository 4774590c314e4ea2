"""Security pages in a real browser (CSRF on): two-factor set-up and sign-in, the staff
screen and the sign-in log, password reset by e-mail, the staff two-factor requirement.
Screenshots go to $OPS_SCREENSHOTS when set."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import psycopg2
import pyotp
import pytest

from .ops_support import browser_page, live_server, screenshot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ADMIN = ("sec-admin@example.net", "sec-admin-password-1")
CUSTOMER = ("ops@acme.example", "customer-password-1")
SUPPORT = ("help@example.net", "support-password-12")


def _setup(app) -> None:
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        factories.user(*CUSTOMER, customer=factories.customer("acme"))
        db.session.commit()


def _sign_in(page, base, email, password):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")


def _sign_out(page):
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("text=You are signed out")


def test_two_factor_staff_and_password_reset(live_server, browser_page):
    base, app = live_server
    _setup(app)
    dsn = app.config["DATABASE_URL"]
    page = browser_page

    # Two-factor set-up of the admin
    _sign_in(page, base, *ADMIN)
    page.wait_for_url(f"{base}/admin/dashboard")
    page.goto(f"{base}/account")
    screenshot(page, "security-01-account")
    page.click("text=Set up two-factor sign-in")
    secret = page.inner_text("#totp-secret").strip()
    assert page.locator("img[alt^='QR code']").evaluate("img => img.naturalWidth") > 100
    screenshot(page, "security-02-two-factor-setup")
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("input[type=submit]")
    page.wait_for_selector("#recovery-codes")
    assert len(page.locator("#recovery-codes li").all()) == 10
    screenshot(page, "security-03-recovery-codes")
    page.click("text=I have kept them")
    _sign_out(page)

    # Signing in now asks for a code
    _sign_in(page, base, *ADMIN)
    page.wait_for_url(f"{base}/login/code")
    page.fill("input[name=code]", "000000")
    page.click("input[type=submit]")
    page.wait_for_selector("text=This code is not right")
    screenshot(page, "security-04-second-factor-wrong-code")
    # the next step's code: the one of the set-up may not be used twice
    page.fill("input[name=code]", pyotp.TOTP(secret).at(datetime.now(timezone.utc) + timedelta(seconds=30)))
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/dashboard")

    # Staff screen: a support member
    page.goto(f"{base}/admin/staff/new")
    page.fill("input[name=email]", SUPPORT[0])
    page.select_option("select[name=role]", "support")
    page.fill("input[name=password]", SUPPORT[1])
    page.fill("input[name=confirm]", SUPPORT[1])
    page.click("input[type=submit]")
    page.wait_for_selector(f"text={SUPPORT[0]} can sign in to the back office as support")
    screenshot(page, "security-05-staff")
    page.goto(f"{base}/admin/sign-ins")
    assert page.locator("#sign-ins tbody tr").count() >= 4
    screenshot(page, "security-06-sign-ins")
    # The operator requires two-factor sign-in for staff
    page.goto(f"{base}/admin/settings")
    page.check("input[name=staff_two_factor_required]")
    page.click("input[type=submit][value='Save settings']")
    page.wait_for_selector("text=Settings saved")
    _sign_out(page)

    _sign_in(page, base, *SUPPORT)
    page.wait_for_url(f"{base}/account/two-factor")
    page.wait_for_selector("text=The operator requires two-factor sign-in for staff")
    screenshot(page, "security-07-staff-must-set-up")
    page.goto(f"{base}/admin/customers")
    page.wait_for_url(f"{base}/account/two-factor")
    _sign_out(page)

    # Password reset by e-mail
    page.goto(f"{base}/login")
    page.click("text=Forgot your password?")
    page.fill("input[name=email]", CUSTOMER[0])
    screenshot(page, "security-08-forgot")
    page.click("input[type=submit]")
    page.wait_for_selector(f"text=If an account uses {CUSTOMER[0]}")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT body FROM billing.mail_outbox WHERE kind = 'password_reset' AND to_addr = %s", (CUSTOMER[0],))
        (body,) = cur.fetchone()
    path = re.search(r"https?://\S+?(/password/reset/\S+)", body).group(1)
    page.goto(base + path)
    page.fill("input[name=new_password]", "A-new-passphrase-2027")
    page.fill("input[name=confirm]", "A-new-passphrase-2027")
    screenshot(page, "security-09-reset")
    page.click("input[type=submit]")
    page.wait_for_selector("text=Your password is changed")
    _sign_in(page, base, CUSTOMER[0], "A-new-passphrase-2027")
    page.wait_for_url(f"{base}/my/")
    page.goto(base + path)
    page.wait_for_selector("text=This link is not valid any more")
