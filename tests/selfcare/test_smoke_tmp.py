def test_smoke(client_a, world):
    for url in ["/my/", "/my/ledger", "/my/ledger?view=days", "/my/ledger?date_from=2020-01-01&date_to=2030-01-01", "/my/cdrs", "/my/cdrs.csv", "/my/rates", "/my/rates?q=33", "/my/rates?q=France", "/my/rates.csv", "/my/endpoints", f"/my/endpoints/{world.a.sip.id}/password", "/my/settings", "/my/settings/password"]:
        r = client_a.get(url)
        print(url, r.status_code)
        assert r.status_code == 200, (url, r.data.decode()[:3000])
