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
