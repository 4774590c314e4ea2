"""Fixtures of the REST API tests: the two-customer world of the self-care tests (A is
the customer a customer token is bound to, B the neighbour it must never see), a token
of each scope, and a client that checks every answer against the OpenAPI document.

Every response a test gets through `ApiClient` is validated by openapi-core against
/api/v1/openapi.json (status documented, content type, body schema), unless the test
asks for the raw response (`check=False`) to look at something the document cannot
describe (a streamed CSV cut midway)."""
from __future__ import annotations

import functools
import json

import pytest
from werkzeug.test import EnvironBuilder
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

from portal.apitokens import services as tokens
from portal.extensions import db
from tests.selfcare.conftest import build_world


# (endpoint, method) answered with a 2xx to a staff token in this session: test_zz_coverage.py
# checks that every route of the API was exercised by the tests that ran before it.
EXERCISED: set[tuple[str, str]] = set()


@functools.cache
def _openapi(spec_json: str) -> OpenAPI:
    # Problem details are JSON (RFC 9457): read them as JSON to check them against the schema.
    # CSV is text.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads,
                                                    "text/csv": lambda data, **kw: data.decode()})
    return OpenAPI.from_dict(json.loads(spec_json), config=config)


def openapi_of(app) -> OpenAPI:
    with app.test_request_context():
        spec = app.extensions["billing_api"].spec.to_dict()
    return _openapi(json.dumps(spec, sort_keys=True))


class ApiClient:
    """A test client that sends a token and validates each answer against the document."""

    def __init__(self, app, token: str | None, staff: bool = False):
        self.app = app
        self.staff = staff
        self.client = app.test_client()
        self.token = token
        self.openapi = openapi_of(app)
        self.checked = 0

    def open(self, method: str, path: str, *, check: bool = True, headers: dict | None = None, **kw):
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        response = self.client.open(path, method=method, headers=headers, **kw)
        if self.staff and 200 <= response.status_code < 300:
            endpoint, _ = self.app.url_map.bind("localhost").match(path.split("?")[0], method=method)
            EXERCISED.add((endpoint, method))
        if check:
            # The request again, for the validator (the app consumed the first one's body).
            request = EnvironBuilder(path, method=method, headers=headers, **kw).get_request()
            self.validate(request, response)
        return response

    def validate(self, request, response) -> None:
        self.openapi.validate_response(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
        self.checked += 1

    def get(self, path, **kw):
        return self.open("GET", path, **kw)

    def post(self, path, **kw):
        return self.open("POST", path, **kw)

    def patch(self, path, **kw):
        return self.open("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.open("DELETE", path, **kw)


@pytest.fixture()
def world(db_session):
    return build_world()


@pytest.fixture()
def token_of(db_session):
    """token_of(scope, customer=None) -> the token text of a new live token."""
    def make(scope: str, customer=None, **kw):
        _row, token = tokens.issue(f"test {scope}", scope, customer_id=customer.id if customer else None,
                                   expires_at=kw.get("expires_at"), actor="tests")
        db.session.flush()
        return token
    return make


@pytest.fixture()
def api(app, world, token_of):
    """api(scope) -> an ApiClient with a token of that scope ('customer': bound to A)."""
    def make(scope: str = "write", customer=None):
        if scope == "customer" and customer is None:
            customer = world.a.customer
        return ApiClient(app, token_of(scope, customer), staff=scope in ("read", "write"))
    return make


@pytest.fixture()
def staff(api):
    return api("write")


@pytest.fixture()
def reader(api):
    return api("read")


@pytest.fixture()
def customer_a(api):
    return api("customer")


def problem_of(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    if code:
        assert body["code"] == code, body
    return body


def fields_of(problem: dict) -> set[str]:
    return {e["field"] for e in problem.get("errors", [])}
