"""Fixtures for the Lua scripts: one emulated FreeSWITCH per test and Lua flavour."""
from __future__ import annotations

import pytest

from tests.lua.emulator import Host, available_flavours

FLAVOURS = available_flavours()
DSN = "pgsql://hostaddr=127.0.0.1 dbname=billing user=billing_freeswitch password=x"


@pytest.fixture(params=FLAVOURS)
def flavour(request) -> str:
    return request.param


@pytest.fixture()
def lua(flavour):
    """A bare Lua state of the flavour with the scripts on package.path (pure modules)."""
    return Host(flavour).new_state()


@pytest.fixture()
def host(flavour, pg) -> Host:
    """A switch whose database handle works inside the test's transaction."""
    return Host(flavour, pg, globals_={"billing_dsn": DSN})
