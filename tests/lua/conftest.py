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


class FreeswitchRole:
    """Runs the scripts' SQL as billing_freeswitch, the switch's least-privilege role."""

    def __init__(self, pg):
        self.pg = pg

    def __enter__(self):
        with self.pg.cursor() as cur:
            cur.execute("SET ROLE billing_freeswitch")
        return self

    def __exit__(self, *exc):
        with self.pg.cursor() as cur:
            cur.execute("RESET ROLE")


@pytest.fixture()
def as_freeswitch(pg):
    return FreeswitchRole(pg)
