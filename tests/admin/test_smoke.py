"""Every back-office page answers for an admin: lists, detail and form pages render, and
unknown ids are 404 pages, never 500."""
from tests import factories


def test_every_admin_get_page_renders_or_404s(app, admin_client, catalogue):
    c = factories.customer(name="acme", balance="5")
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.") and "GET" in r.methods]
    assert len(rules) > 20
    for rule in rules:
        url = rule.build({arg: 999999 for arg in rule.arguments})[1]
        response = admin_client.get(url)
        expected = 404 if rule.arguments else 200
        assert response.status_code == expected, url
    assert admin_client.get(f"/admin/customers/{c.id}").status_code == 200
