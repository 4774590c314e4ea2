"""The compiled serializer of CDR pages gives exactly what marshmallow's dump of the
documented schema gives, for staff rows and customer rows (which lack staff keys)."""
from __future__ import annotations

from portal.api.cdrs import CdrSchema, _dump_cdr
from portal.cdrs import services as cdrs


def test_compiled_dump_equals_the_schemas_dump(pg, world):
    staff_rows = cdrs.page(pg, cdrs.CdrFilter(), size=50).rows
    customer_rows = cdrs.page(pg, cdrs.CdrFilter(), size=50, customer_id=world.a.customer.id).rows
    assert staff_rows and customer_rows
    schema = CdrSchema()
    for row in staff_rows + customer_rows:
        assert _dump_cdr(row) == schema.dump(row)
    assert "cost_amount" in _dump_cdr(staff_rows[0]) and "cost_amount" not in _dump_cdr(customer_rows[0])
