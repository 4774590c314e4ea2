"""Switch actions for the back office; every input is checked before it reaches ESL."""
from __future__ import annotations

import json
import re

from .esl import EslClient, EslError

UUID_RE = re.compile(r"^[0-9A-Za-z-]{8,64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
GATEWAY_ACTIONS = ("rescan", "killgw")


class SwitchError(RuntimeError):
    """An action the switch could not do; the message says why."""


class SwitchNotConfigured(SwitchError):
    pass


def settings(config) -> dict:
    """The event socket settings the page shows (never the password)."""
    return {"host": config.get("ESL_HOST") or None, "port": int(config.get("ESL_PORT") or 8021),
            "password_set": bool(config.get("ESL_PASSWORD")) and config.get("ESL_PASSWORD") != "ClueCon",
            "profile": config.get("ESL_SOFIA_PROFILE", "carriers")}


def explain(error: str, config) -> str:
    """What an event socket failure means and what to check, in words."""
    s = settings(config)
    where = f"{s['host']}:{s['port']}"
    lowered = error.lower()
    if "connection refused" in lowered:
        return (f"Nothing listens at {where}. Is FreeSWITCH running with mod_event_socket, and does "
                "event_socket.conf.xml listen on that address and port (billing_esl_ip, billing_esl_port "
                "in freeswitch/conf/billing_vars.xml)?")
    if "timed out" in lowered:
        return (f"{where} did not answer in time: check ESL_HOST and ESL_PORT, and that a firewall lets the "
                "portal reach the event socket.")
    if "name or service not known" in lowered or "temporary failure in name resolution" in lowered:
        return f"The switch's name {s['host']} cannot be resolved: check ESL_HOST."
    if "refused the event socket password" in lowered:
        return ("The switch refused the password: ESL_PASSWORD must equal the event socket's password "
                "(billing_esl_password in freeswitch/conf/billing_vars.xml).")
    if "not an event socket" in lowered:
        return f"Something else than FreeSWITCH's event socket answers at {where}: check ESL_PORT."
    if "closed the connection" in lowered or "disconnected" in lowered:
        return ("The switch closed the connection: its event socket ACL (apply-inbound-acl) may not allow "
                "the portal's address.")
    return error


def client_from_config(config) -> EslClient:
    if not config.get("ESL_HOST"):
        raise SwitchNotConfigured("no FreeSWITCH event socket is configured: set ESL_HOST (and ESL_PORT, "
                                  "ESL_PASSWORD) in the portal's environment to enable switch actions")
    return EslClient(config["ESL_HOST"], int(config.get("ESL_PORT") or 8021), config.get("ESL_PASSWORD") or "ClueCon",
                     timeout=float(config.get("ESL_TIMEOUT", 3.0)))


def _run(config, command: str) -> str:
    try:
        with client_from_config(config) as client:
            return client.api(command)
    except EslError as e:
        raise SwitchError(str(e)) from None


def live_calls(config) -> list[dict]:
    """`show calls as json`: one dict per call (no `rows` key when there are none)."""
    output = _run(config, "show calls as json")
    try:
        data = json.loads(output)
    except ValueError:
        raise SwitchError(f"unexpected answer to show calls: {output[:200]}") from None
    return data.get("rows") or []


def hangup(config, call_uuid: str, cause: str = "NORMAL_CLEARING") -> str:
    if not UUID_RE.match(call_uuid or ""):
        raise SwitchError("not a call uuid")
    if not re.match(r"^[A-Z_]{1,40}$", cause):
        raise SwitchError("not a hangup cause")
    output = _run(config, f"uuid_kill {call_uuid} {cause}").strip()
    if not output.startswith("+OK"):
        raise SwitchError(f"the switch answered: {output or 'nothing'}")
    return output


def gateway_action(config, action: str, gateway: str) -> str:
    """`sofia profile <profile> rescan` (picks up new gateways) or `killgw <name>`
    (drops one so that a following rescan reloads its changed settings)."""
    profile = config.get("ESL_SOFIA_PROFILE", "carriers")
    if action not in GATEWAY_ACTIONS:
        raise SwitchError("unknown gateway action")
    if not NAME_RE.match(gateway or "") or not NAME_RE.match(profile):
        raise SwitchError("not a gateway name")
    command = f"sofia profile {profile} rescan" if action == "rescan" else f"sofia profile {profile} killgw {gateway}"
    output = _run(config, command).strip()
    if output.startswith("-ERR") or "Invalid" in output:
        raise SwitchError(f"the switch answered: {output}")
    return output or "+OK"
