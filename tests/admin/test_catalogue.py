"""Weights, permissions and destinations: CRUD, refusal to delete what is in use, search."""
from sqlalchemy import select

from portal.extensions import db
from portal.models import Destination, Permission, Weight
from tests import factories
from tests.admin.conftest import audit_rows, field_error, flashes


def test_weight_crud(admin_client, db_session):
    assert admin_client.post("/admin/weights/new", data={"name": "premium"}).status_code == 302
    w = db.session.scalar(select(Weight).where(Weight.name == "premium"))
    admin_client.post(f"/admin/weights/{w.id}/edit", data={"name": "premium-rate"})
    db.session.expire_all()
    assert db.session.get(Weight, w.id).name == "premium-rate"
    html = admin_client.post("/admin/weights/new", data={"name": "has space"}).get_data(as_text=True)
    assert "Only letters, digits" in field_error(html, "name")
    admin_client.post(f"/admin/weights/{w.id}/delete")
    assert db.session.get(Weight, w.id) is None
    assert [(r.action, r.details) for r in audit_rows("weight")] == [
        ("create", {"name": "premium"}), ("update", {"name": ["premium", "premium-rate"]}),
        ("delete", {"name": "Weight premium-rate"})]


def test_weight_in_use_cannot_be_deleted(admin_client, catalogue):
    fixed = factories.weight("fixed")
    factories.destination("331", fixed, "Paris")
    db.session.commit()
    response = admin_client.post(f"/admin/weights/{fixed.id}/delete", follow_redirects=True)
    messages = flashes(response.get_data(as_text=True))
    assert any("still used by destinations" in m for m in messages), messages
    assert db.session.get(Weight, fixed.id) is not None
    unused_by_destinations = factories.weight("satellite")
    factories.permission([unused_by_destinations], name="sat")
    db.session.commit()
    response = admin_client.post(f"/admin/weights/{unused_by_destinations.id}/delete", follow_redirects=True)
    assert any("still part of a permission" in m for m in flashes(response.get_data(as_text=True)))
    assert audit_rows("weight", "delete") == []


def test_permission_crud_with_weights(admin_client, catalogue):
    local, mobile = catalogue["local"], catalogue["mobile"]
    response = admin_client.post("/admin/permissions/new", data={"name": "local_only", "weight_ids": [local.id]})
    assert response.status_code == 302
    p = db.session.scalar(select(Permission).where(Permission.name == "local_only"))
    assert [w.name for w in p.weights] == ["local"]
    page = admin_client.get(f"/admin/permissions/{p.id}/edit").get_data(as_text=True)
    assert f'<option selected value="{local.id}">' in page
    admin_client.post(f"/admin/permissions/{p.id}/edit", data={"name": "local_only", "weight_ids": [local.id, mobile.id]})
    db.session.expire_all()
    assert [w.name for w in db.session.get(Permission, p.id).weights] == ["local", "mobile"]
    assert audit_rows("permission", "update")[0].details == {"weights": [["local"], ["local", "mobile"]]}
    html = admin_client.get("/admin/permissions").get_data(as_text=True)
    assert "local_only" in html and "standard" in html


def test_permission_used_by_an_endpoint_cannot_be_deleted(admin_client, catalogue):
    factories.endpoint(factories.customer(name="acme"), catalogue["standard"])
    db.session.commit()
    response = admin_client.post(f"/admin/permissions/{catalogue['standard'].id}/delete", follow_redirects=True)
    assert any("still used by endpoints" in m for m in flashes(response.get_data(as_text=True)))
    assert db.session.get(Permission, catalogue["standard"].id) is not None


def test_destination_crud_and_validation(admin_client, catalogue):
    local = catalogue["local"]
    assert admin_client.post("/admin/destinations/new",
                             data={"prefix": "4420", "name": "London", "weight_id": local.id}).status_code == 302
    d = db.session.scalar(select(Destination).where(Destination.prefix == "4420"))
    html = admin_client.post("/admin/destinations/new", data={"prefix": "+44", "name": "", "weight_id": local.id})\
        .get_data(as_text=True)
    assert "Digits only" in field_error(html, "prefix") and field_error(html, "name")
    db.session.commit()
    response = admin_client.post("/admin/destinations/new", data={"prefix": "4420", "name": "Again", "weight_id": local.id},
                                 follow_redirects=True)
    assert any("already exists" in m for m in flashes(response.get_data(as_text=True)))
    admin_client.post(f"/admin/destinations/{d.id}/edit", data={"prefix": "4420", "name": "London (fixed)",
                                                              "weight_id": catalogue["mobile"].id})
    db.session.expire_all()
    assert db.session.get(Destination, d.id).weight_id == catalogue["mobile"].id
    admin_client.post(f"/admin/destinations/{d.id}/delete")
    assert db.session.get(Destination, d.id) is None
    assert [r.action for r in audit_rows("destination")] == ["create", "update", "delete"]


def test_destination_search_by_prefix_name_and_weight(admin_client, catalogue):
    factories.destination("44", catalogue["local"], "United Kingdom")
    by_number = admin_client.get("/admin/destinations?q=33612345").get_data(as_text=True)
    assert "France Mobile" in by_number and ">France<" in by_number and "United Kingdom" not in by_number
    by_name = admin_client.get("/admin/destinations?q=kingdom").get_data(as_text=True)
    assert "United Kingdom" in by_name and "France" not in by_name
    by_weight = admin_client.get(f"/admin/destinations?weight_id={catalogue['mobile'].id}").get_data(as_text=True)
    assert "France Mobile" in by_weight and "United Kingdom" not in by_weight
    sorted_desc = admin_client.get("/admin/destinations?sort=-prefix").get_data(as_text=True)
    assert sorted_desc.index("<code>44</code>") < sorted_desc.index("<code>336</code>") < sorted_desc.index("<code>33</code>")


def test_empty_catalogue_points_to_weights_first(admin_client, db_session):
    html = admin_client.get("/admin/destinations").get_data(as_text=True)
    assert "Start with the weights" in html
