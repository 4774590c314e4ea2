"""The production layout of deploy/ (docs/deployment.md), run for real: gunicorn with
the real wsgi app against a test database, nginx with TLS in front of it (Debian's
nginx, started on spare ports with the site file of deploy/), the systemd units
checked by systemd-analyze and their commands run, the scheduler as its own process.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, create_database, drop_database, PREFIX

DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
UNITS = ("billing-migrate.service", "billing-portal.service", "billing-scheduler.service",
         "billing-import-spool.service", "billing-import-spool.timer")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "SCHEDULER", "PORTAL_"))}
    env.update(PORTAL_CONFIG="production", DATABASE_URL=database_url, SECRET_KEY="deploy-test-" + "x" * 32,
               SCHEDULER_ENABLED="0", TRUSTED_PROXIES="127.0.0.1", PATH=f"{VENV_BIN}:{env.get('PATH', '')}")
    return env


def wait_for(check, what: str, seconds: float = 60, process=None):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        try:
            result = check()
            if result:
                return result
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds} s ({last})")


def unit_exec(unit: str) -> list[str]:
    """The ExecStart command line of a unit, with /srv/billing made this checkout."""
    text = (DEPLOY / unit).read_text()
    line = re.search(r"^ExecStart=(.+)$", text, re.M).group(1)
    return line.replace("/srv/billing/.venv/bin/", f"{VENV_BIN}/").replace("/srv/billing", str(ROOT)).split()


@pytest.fixture(scope="module")
def deployed_db(template_db):
    name = f"{PREFIX}_deploy"
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@pytest.fixture(scope="module")
def gunicorn(deployed_db, tmp_path_factory):
    """billing-portal.service's command (deploy/gunicorn.conf.py, wsgi:app) on a spare port."""
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    command = unit_exec("billing-portal.service") + ["--bind", f"127.0.0.1:{port}", "--workers", "2"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=production_env(deployed_db), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
                 "gunicorn listening", process=process)
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(port: int, path: str, host: str = "billing.example.net", context=None, headers=None):
    conn = (http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30) if context
            else http.client.HTTPConnection("127.0.0.1", port, timeout=30))
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_gunicorn_serves_the_real_wsgi_app(gunicorn):
    port, log = gunicorn
    status, headers, body = get(port, "/login")
    assert status == 200, body[:500]
    assert "<h1 class=\"h4 mb-3\">Sign in</h1>" in body
    # ProductionConfig: session cookies only over https.
    assert "Secure" in headers.get("Set-Cookie", "") and "HttpOnly" in headers["Set-Cookie"]
    assert "Booting worker" in log.read_text()
    assert log.read_text().count("Booting worker") == 2


@pytest.fixture(scope="module")
def nginx(gunicorn, tmp_path_factory):
    """deploy/nginx-billing.conf in front of the gunicorn fixture, TLS with a certificate
    made here, on spare ports; only listen ports, paths and certificate are changed."""
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx_bin):
        pytest.fail("nginx is missing: scripts/test.sh installs Debian's nginx")
    port, _ = gunicorn
    tmp = tmp_path_factory.mktemp("nginx")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=billing.example.net", "-addext", "subjectAltName=DNS:billing.example.net",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    tls, plain = free_port(), free_port()
    site = (DEPLOY / "nginx-billing.conf").read_text()
    site = re.sub(r"^\s*listen \[::\].*\n", "", site, flags=re.M)
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl http2;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{plain};")
    site = site.replace("/etc/letsencrypt/live/billing.example.net/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/billing.example.net/privkey.pem", str(key))
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{port};")
    site = site.replace("/srv/billing/static/", f"{ROOT}/static/")
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(f"""
        daemon off;
        user root;
        worker_processes 1;
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log;
        events {{ worker_connections 64; }}
        http {{
            include /etc/nginx/mime.types;
            access_log {tmp}/access.log;
            client_body_temp_path {tmp}/body;
            proxy_temp_path {tmp}/proxy;
            fastcgi_temp_path {tmp}/fastcgi;
            uwsgi_temp_path {tmp}/uwsgi;
            scgi_temp_path {tmp}/scgi;
            include {tmp}/site.conf;
        }}
        """)
    args = [nginx_bin, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")]
    checked = subprocess.run(args + ["-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", tls), timeout=1).close() or True,
                 "nginx listening", process=process)
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False   # the certificate names billing.example.net, we dial 127.0.0.1
        yield tls, plain, context
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_behind_nginx_with_tls(nginx):
    tls, plain, context = nginx
    status, headers, body = get(tls, "/login", context=context)
    assert status == 200 and "Sign in" in body
    # The app sees https through nginx's X-Forwarded-Proto (ProxyFix): HSTS and secure cookies.
    assert headers.get("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    assert "Secure" in headers.get("Set-Cookie", "")
    # An anonymous page redirects to the https login of the public host name.
    status, headers, _ = get(tls, "/admin/", context=context)
    assert status == 302
    assert re.match(r"(https://billing\.example\.net)?/login\?next=", headers["Location"]), headers["Location"]
    # Plain http is sent to https.
    status, headers, _ = get(plain, "/login")
    assert status == 301 and headers["Location"] == "https://billing.example.net/login"
    # Static files come from nginx itself, cacheable.
    status, headers, body = get(tls, "/static/css/app.css", context=context)
    assert status == 200 and "public" in headers.get("Cache-Control", "") and body


def test_systemd_units_verify_and_name_the_right_commands(tmp_path):
    analyze = shutil.which("systemd-analyze")
    units = {u: (DEPLOY / u).read_text() for u in UNITS}
    assert "SCHEDULER_ENABLED=0" in units["billing-portal.service"]
    assert "gunicorn -c deploy/gunicorn.conf.py wsgi:app" in units["billing-portal.service"]
    assert "jobs scheduler" in units["billing-scheduler.service"]
    assert "billing import-spool /var/log/freeswitch/cdr-pg-csv/cdr-spool.sql" in units["billing-import-spool.service"]
    assert "OnUnitActiveSec=1min" in units["billing-import-spool.timer"]
    assert "Type=oneshot" in units["billing-migrate.service"] and "db upgrade" in units["billing-migrate.service"]
    for name in ("billing-portal.service", "billing-scheduler.service"):
        assert "Requires=billing-migrate.service" in units[name] and "After=billing-migrate.service" in units[name]
    for text in units.values():
        assert "flask run" not in text and "make run" not in text
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package); the units' commands are tested below")
    for name, text in units.items():
        (tmp_path / name).write_text(text.replace("/srv/billing/.venv/bin/", f"{VENV_BIN}/")
                                     .replace("/srv/billing", str(ROOT)).replace("User=billing", "User=root")
                                     .replace("Group=billing", "Group=root").replace("User=freeswitch", "User=root")
                                     .replace("Group=freeswitch", "Group=root"))
    result = subprocess.run([analyze, "verify", *(str(tmp_path / u) for u in UNITS)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_migrate_unit_upgrades_an_empty_database():
    name = f"{PREFIX}_deploy_empty"
    url = create_database(name)
    try:
        result = subprocess.run(unit_exec("billing-migrate.service"), cwd=ROOT, env=production_env(url),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "applied migrations: 0001_foundation.sql" in result.stdout
        again = subprocess.run(unit_exec("billing-migrate.service"), cwd=ROOT, env=production_env(url),
                               capture_output=True, text=True, timeout=300)
        assert again.stdout.strip() == "database is up to date"
    finally:
        drop_database(name)


def test_the_scheduler_runs_as_its_own_process_and_stops_on_sigterm(deployed_db):
    process = subprocess.Popen(unit_exec("billing-scheduler.service"), cwd=ROOT, env=production_env(deployed_db),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "scheduler started with" in line:
                break
        started = "".join(lines)
        assert re.search(r"scheduler started with \d+ jobs: .*invoice_run.*mail_delivery", started), started
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert "scheduler stopped" in out


def test_the_guide_never_shows_the_development_server_for_production():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    blocks = "\n".join(re.findall(r"```.*?\n(.*?)```", guide, re.S))
    assert "billing-portal" in blocks and "systemctl" in blocks and "nginx -t" in blocks
    assert "make run" not in blocks and "flask run" not in blocks and "flask --app wsgi run" not in blocks


@pytest.mark.parametrize("overrides, message", [
    ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
    ({"PORTAL_CONFIG": "prod"}, "PORTAL_CONFIG='prod' is not one of: production"),
])
def test_production_refuses_to_start_without_a_secret_or_with_an_unknown_config(deployed_db, overrides, message):
    env = production_env(deployed_db)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and message in result.stderr
