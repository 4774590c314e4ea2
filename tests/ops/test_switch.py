"""ESL client against a tiny fake event socket speaking the real framing, and the page."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from portal.switch import services
from portal.switch.esl import EslClient, EslError

CALLS = {"row_count": 1, "rows": [{"uuid": "a1b2c3d4-0000-1111-2222-333344445555", "created": "2026-03-10 12:00:00",
                                   "cid_num": "100", "dest": "33123456789", "callstate": "ACTIVE",
                                   "name": "sofia/internal/100@198.51.100.7"}]}


class FakeEsl:
    """A one-thread event socket: auth/request, command/reply, api/response with Content-Length."""

    def __init__(self, password="ClueCon", calls=CALLS):
        self.password, self.calls, self.commands = password, calls, []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(5)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn):
        conn.sendall(b"Content-Type: auth/request\n\n")
        buffer = b""
        while True:
            while b"\n\n" not in buffer:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
            line, _, buffer = buffer.partition(b"\n\n")
            command = line.decode()
            self.commands.append(command)
            if command.startswith("auth "):
                if command[5:] == self.password:
                    conn.sendall(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
                else:
                    conn.sendall(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
                    conn.sendall(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
                    return
            elif command == "exit":
                conn.sendall(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n")
                return
            elif command.startswith("api "):
                body = self._api(command[4:]).encode()
                # split the frame in two writes to exercise partial reads
                frame = b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body
                conn.sendall(frame[:20])
                conn.sendall(frame[20:])

    def _api(self, cmd):
        if cmd == "show calls as json":
            return json.dumps(self.calls)
        if cmd.startswith("uuid_kill "):
            return "+OK\n" if cmd.split()[1] == CALLS["rows"][0]["uuid"] else "-ERR No such channel!\n"
        if cmd.startswith("sofia profile carriers "):
            return "+OK\n"
        return "-ERR " + cmd.split()[0] + " Command not found!\n"

    def close(self):
        self.server.close()


@pytest.fixture()
def fake_esl():
    server = FakeEsl()
    yield server
    server.close()


def test_client_auth_and_api(fake_esl):
    with EslClient("127.0.0.1", fake_esl.port, "ClueCon") as client:
        assert json.loads(client.api("show calls as json"))["row_count"] == 1
        assert client.api("uuid_kill nope").startswith("-ERR")
    for _ in range(100):  # the server thread reads "exit" after the client has gone
        if fake_esl.commands[-1] == "exit":
            break
        time.sleep(0.01)
    assert fake_esl.commands[0] == "auth ClueCon" and fake_esl.commands[-1] == "exit"


def test_wrong_password_is_refused(fake_esl):
    with pytest.raises(EslError, match="password"):
        EslClient("127.0.0.1", fake_esl.port, "wrong").connect()


def test_unreachable_switch_is_a_clear_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(EslError, match="cannot reach the switch"):
        EslClient("127.0.0.1", port, timeout=1).connect()


def test_services_validate_before_sending(fake_esl):
    config = {"ESL_HOST": "127.0.0.1", "ESL_PORT": fake_esl.port, "ESL_PASSWORD": "ClueCon"}
    assert services.live_calls(config)[0]["dest"] == "33123456789"
    assert services.hangup(config, CALLS["rows"][0]["uuid"]) == "+OK"
    with pytest.raises(services.SwitchError, match="No such channel"):
        services.hangup(config, "ffffffff-0000")
    with pytest.raises(services.SwitchError, match="not a call uuid"):
        services.hangup(config, "x; fsctl shutdown")
    with pytest.raises(services.SwitchError, match="gateway name"):
        services.gateway_action(config, "killgw", "gw a\nshutdown")
    assert services.gateway_action(config, "killgw", "gw_a1") == "+OK"
    assert "api sofia profile carriers killgw gw_a1" in fake_esl.commands
    with pytest.raises(services.SwitchNotConfigured):
        services.live_calls({"ESL_HOST": None})


def test_empty_call_list_has_no_rows_key(fake_esl):
    fake_esl.calls = {"row_count": 0}
    config = {"ESL_HOST": "127.0.0.1", "ESL_PORT": fake_esl.port, "ESL_PASSWORD": "ClueCon"}
    assert services.live_calls(config) == []


def test_page_not_configured(admin_client, app, world):
    app.config["ESL_HOST"] = None
    page = admin_client.get("/admin/switch").get_data(as_text=True)
    assert "No event socket is configured" in page and "gw_a1" in page
    setup = page.split("data-switch-setup", 1)[1].split("</table>", 1)[0]
    for name in ("ESL_HOST", "ESL_PORT", "ESL_PASSWORD", "ESL_SOFIA_PROFILE"):
        assert f"<code>{name}</code>" in setup
    assert "default ClueCon: change it" in setup


def test_page_lists_calls_and_actions(admin_client, app, world, fake_esl):
    app.config.update(ESL_HOST="127.0.0.1", ESL_PORT=fake_esl.port, ESL_PASSWORD="ClueCon")
    try:
        page = admin_client.get("/admin/switch").get_data(as_text=True)
        assert "33123456789" in page and "Hang up" in page
        response = admin_client.post(f"/admin/switch/calls/{CALLS['rows'][0]['uuid']}/hangup")
        assert "hung up" in admin_client.get(response.headers["Location"]).get_data(as_text=True)
        response = admin_client.post("/admin/switch/gateways/gw_a1/rescan")
        assert "rescan gw_a1: +OK" in admin_client.get(response.headers["Location"]).get_data(as_text=True)
        assert "api sofia profile carriers rescan" in fake_esl.commands
        response = admin_client.post("/admin/switch/gateways/nosuch/rescan")
        assert "There is no gateway" in admin_client.get(response.headers["Location"]).get_data(as_text=True)
        fake_esl.close()
        app.config["ESL_PORT"] = 1
        page = admin_client.get("/admin/switch").get_data(as_text=True)
        assert "cannot be reached" in page and "Nothing listens at 127.0.0.1:1" in page
        response = admin_client.post("/admin/switch/gateways/gw_a1/rescan")
        flash = admin_client.get(response.headers["Location"]).get_data(as_text=True)
        assert "rescan gw_a1 failed. Nothing listens at 127.0.0.1:1. Is FreeSWITCH running" in flash
    finally:
        app.config["ESL_HOST"] = None


def test_switch_errors_in_words():
    config = {"ESL_HOST": "fs1.example.net", "ESL_PORT": 8021}
    assert "Nothing listens at fs1.example.net:8021" in services.explain(
        "cannot reach the switch at fs1.example.net:8021: Connection refused", config)
    assert "ESL_PASSWORD must equal" in services.explain("the switch refused the event socket password", config)
    assert "did not answer in time" in services.explain("cannot reach the switch at x:1: timed out", config)
    assert "cannot be resolved: check ESL_HOST" in services.explain(
        "cannot reach the switch at x:1: Name or service not known", config)
    assert services.explain("something new", config) == "something new"
