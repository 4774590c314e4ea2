"""The OpenAPI document is generated from the code, valid, describes every route of
the API, and is browsable with vendored assets only."""
from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]


def api_rules(app):
    return [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")
            and r.endpoint not in ("api-docs.openapi_json", "api_docs.docs")]


def test_the_document_is_valid_openapi_3(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_every_route_and_method_is_documented(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    missing = []
    for rule in api_rules(app):
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing
    assert len(api_rules(app)) >= 25


def test_money_is_documented_as_strings_never_numbers(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    money = {"balance", "available", "reserved", "amount", "rate", "sell_amount", "cost_amount", "gross_total",
             "credit_limit", "connect_fee", "margin"}
    seen = 0
    for name, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if field in money:
                assert prop.get("type") == "string", f"{name}.{field} is {prop}"
                seen += 1
            assert prop.get("type") != "number", f"{name}.{field} is a JSON number"
    assert seen >= 15


def test_errors_are_documented_as_problem_details(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == ["application/problem+json"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method != "parameters":
                assert "default" in operation["responses"], f"{method} {path}"


def test_every_view_has_an_access_rule(app):
    """A route without @allow(...) is refused at run time (fail closed); none may exist."""
    bare = [r.endpoint for r in api_rules(app)
            if getattr(app.view_functions[r.endpoint], "_api_rule", None) is None]
    assert bare == []


def test_the_reference_page_uses_vendored_assets_only(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith(("/static/", "/api/v1/", "data:")) for a in assets), assets
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset
    assert "/api/v1/openapi.json" in html
    script = (ROOT / "static/js/api-docs.js").read_text()
    assert "validatorUrl: null" in script     # no call to the online validator
