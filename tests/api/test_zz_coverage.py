"""Every route and method of the API answered a staff token with success in the tests
of this directory (it runs last: file order). Alone, or after a selection that ran no
resource test, it skips."""
from __future__ import annotations

import pytest

from .conftest import EXERCISED
from .test_openapi import api_rules


def test_every_route_was_exercised(app):
    if not EXERCISED:
        pytest.skip("run the whole tests/api directory: this checks what the other tests exercised")
    routes = {(r.endpoint, m) for r in api_rules(app) for m in r.methods - {"HEAD", "OPTIONS"}}
    assert sorted(routes - EXERCISED) == []
