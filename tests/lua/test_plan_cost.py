"""The statements the switch sends are planned as cheap: no JIT compilation per call.

PostgreSQL JIT-compiles a plan whose estimated cost exceeds ``jit_above_cost`` (100,000
by default), at every execution. route.lua's statement joins route_call with
route_options and sorts; with the planner's default guess of 1,000 rows per
set-returning function it was estimated at 1,000,000 rows (cost ~434,000), so every
call set-up paid several milliseconds of server CPU for compilation
(sql/procedures/11_route_call.sql, ROWS 10).
"""
from __future__ import annotations

import json

JIT_ABOVE_COST = 100_000      # PostgreSQL's default; an operator may lower it, not us


def _plan(pg, statement: str) -> dict:
    with pg.cursor() as cur:
        cur.execute("SET LOCAL jit_above_cost = %s", (JIT_ABOVE_COST,))
        cur.execute("EXPLAIN (FORMAT JSON) " + statement)
        plan = cur.fetchone()[0]
    return (plan if isinstance(plan, list) else json.loads(plan))[0]


def test_route_statement_is_not_jit_compiled(lua, pg):
    router = lua.eval('(require("billing.lib.router"))')
    call = lua.table_from({"uuid": "0b7c5f7e-0000-4000-8000-000000000001", "destination": "33123456789",
                           "caller_id": "100", "network_addr": "198.51.100.7", "sip_user": "acme100"})
    statement = router.build_query(call)
    assert isinstance(statement, str)
    plan = _plan(pg, statement)
    assert "JIT" not in plan, plan
    assert plan["Plan"]["Total Cost"] < 1_000, plan["Plan"]["Total Cost"]
    assert plan["Plan"]["Plan Rows"] <= 10


def test_other_switch_statements_are_cheap(pg):
    for statement in ("SELECT * FROM billing.reauthorize_call('u', 300)",
                      "SELECT * FROM billing.directory_user('acme100', 'sip.example.net')",
                      "SELECT * FROM billing.sofia_gateways('carriers')",
                      "SELECT * FROM billing.acl_networks('billing_customers')"):
        plan = _plan(pg, statement)
        assert "JIT" not in plan and plan["Plan"]["Total Cost"] < 1_000, (statement, plan["Plan"]["Total Cost"])
