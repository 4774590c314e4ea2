"""An emulator of FreeSWITCH's Lua API that runs the real scripts of freeswitch/scripts.

Written from /work/shared/FREESWITCH.md and the FreeSWITCH 1.10 sources it cites
(mod_lua/freeswitch_lua.cpp, switch_cpp.cpp, switch_ivr_originate.c, mod_dptools.c,
switch_channel.c, mod_sofia.c, mod_cdr_pg_csv.c). What it copies, because the scripts
depend on it:

* one fresh Lua state per script run (each `lua` application call, each XML request);
  ``package.path`` points at freeswitch/scripts like lua.conf.xml's script-directory;
* ``freeswitch.Dbh``: a real PostgreSQL connection; rows are new tables of column name
  -> **string** (libpq text: booleans ``t``/``f``, numerics as PostgreSQL prints them),
  SQL NULL as ``""``, duplicate column names last-wins; the callback stops iteration on a
  non-zero number or numeric string (C ``int`` truncation of ``lua_tonumber``) and on an
  error, which is logged, not re-raised; ``query`` returns a boolean; ``last_error`` is
  cleared by each query; ``release`` makes the handle unusable (``connected() == false``);
* ``session``: getVariable looks at channel variables, then the caller profile, then the
  global variables; setVariable(k, nil) unsets; execute expands ``${var}`` in data and is
  synchronous; an unknown application hangs up with DESTINATION_OUT_OF_ORDER;
* ``bridge``: scripted outcome per gateway; after a failure the A-leg carries
  originate_disposition / originate_failed_cause / DIALSTATUS / last_bridge_hangup_cause
  / last_bridge_proto_specific_hangup_cause, and ``switch_channel_handle_cause`` hangs it
  up unless continue_on_fail allows the cause (NO_ANSWER, NO_USER_RESPONSE and
  ORIGINATOR_CANCEL never hang up when continue_on_fail is unset); an answered bridge
  sets originate_disposition (and DIALSTATUS) "SUCCESS" as 1.10.12 does, answers the
  A-leg, runs every ``execute_on_answer*`` variable,
  and with hangup_after_bridge=true hangs the A-leg up when the bridge ends;
* ``limit_execute``: skips the application (setting nothing) when the hash counter is at
  its maximum; the count is released when the application returns;
* the scheduler (switch_scheduler.c): tasks run when the clock reaches their whole
  epoch second; the ``sched_hangup +N CAUSE`` application and the ``sched_hangup`` API
  schedule in the group of the call's uuid, ``sched_api`` in a named group,
  ``sched_del GROUP`` removes a group's tasks; while an answered call talks, due tasks
  run in time order (a re-authorization can move the call's hang-up);
* at answer every ``execute_on_answer*`` application, then every ``api_on_answer*``
  command with ``${strepoch()}`` expanded; at hangup ``api_hangup_hook``;
* ``freeswitch.API()``: ``luarun SCRIPT ARGS`` runs the script in a fresh state (a thread
  of its own in FreeSWITCH: here at once, before the call goes on, or never when the
  host's database stalls), ``uuid_getvar`` / ``uuid_setvar`` on the channels the host
  knows (uuid_setvar's argument parser strips quotes and backslashes, as
  switch_separate_string does), ``fsctl flush_db_handles``, ``getTime()`` (ms);
  ``freeswitch.msleep`` advances the host's clock;
* ``hangup(cause)`` and the ``hangup`` application take a cause name of CAUSE_CHART;
  any other name hangs up with NORMAL_CLEARING (switch_channel_str2cause);
* hangup of an unanswered call answers the INVITE with the code of
  last_bridge_proto_specific_hangup_cause ("sip:402") else the cause's default code
  (mod_sofia hangup_cause_to_sip, 480 for any cause it does not list), with every
  ``sip_rh_*`` variable as a header;
* at hangup the timestamps and durations are set like switch_channel_set_timestamps
  (stamps as local time text of the switch's time zone, epochs; answer_epoch "0" when
  unanswered), and ``cdr_insert`` builds mod_cdr_pg_csv's INSERT from the real
  cdr_pg_csv.conf.xml (PQescapeString, then %q: quotes end up doubled twice).
"""
from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.extensions

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "freeswitch" / "scripts"
CONF = ROOT / "freeswitch" / "conf"

ALL_FLAVOURS = ["lua51", "lua52", "lua53", "lua54", "luajit20", "luajit21"]


def available_flavours() -> list[str]:
    found = []
    for name in ALL_FLAVOURS:
        try:
            importlib.import_module(f"lupa.{name}")
        except ImportError:
            continue
        found.append(name)
    return found


# libpq hands every value over as text: keep PostgreSQL's own spelling.
_RAW_OIDS = (16, 17, 20, 21, 23, 25, 26, 114, 650, 700, 701, 790, 829, 869, 1042, 1043, 1082, 1083,
             1114, 1184, 1186, 1266, 1700, 2950, 3802)
_RAW = psycopg2.extensions.new_type(_RAW_OIDS, "FS_RAW_TEXT", lambda value, cur: value)

# FreeSWITCH's default SIP response for a cause (mod_sofia.c hangup_cause_to_sip of
# 1.10.12); any other cause is 480.
CAUSE_TO_SIP = {
    "UNALLOCATED_NUMBER": 404, "NO_ROUTE_TRANSIT_NET": 404, "NO_ROUTE_DESTINATION": 404,
    "USER_BUSY": 486, "NO_USER_RESPONSE": 408, "NO_ANSWER": 480, "SUBSCRIBER_ABSENT": 480,
    "CALL_REJECTED": 603, "NUMBER_CHANGED": 410, "REDIRECTION_TO_NEW_DESTINATION": 410,
    "DESTINATION_OUT_OF_ORDER": 502, "INVALID_PROFILE": 502, "INVALID_NUMBER_FORMAT": 484,
    "INVALID_URL": 484, "INVALID_GATEWAY": 484, "FACILITY_REJECTED": 501, "NORMAL_UNSPECIFIED": 480,
    "REQUESTED_CHAN_UNAVAIL": 503, "NORMAL_CIRCUIT_CONGESTION": 503, "NETWORK_OUT_OF_ORDER": 503,
    "NORMAL_TEMPORARY_FAILURE": 503, "SWITCH_CONGESTION": 503, "GATEWAY_DOWN": 503,
    "OUTGOING_CALL_BARRED": 403, "INCOMING_CALL_BARRED": 403, "BEARERCAPABILITY_NOTAUTH": 403,
    "BEARERCAPABILITY_NOTAVAIL": 503, "BEARERCAPABILITY_NOTIMPL": 488, "INCOMPATIBLE_DESTINATION": 488,
    "FACILITY_NOT_IMPLEMENTED": 501, "SERVICE_NOT_IMPLEMENTED": 501, "RECOVERY_ON_TIMER_EXPIRE": 504,
    "ORIGINATOR_CANCEL": 487, "EXCHANGE_ROUTING_ERROR": 483, "BUSY_EVERYWHERE": 600, "DECLINE": 603,
    "DOES_NOT_EXIST_ANYWHERE": 604, "NOT_ACCEPTABLE": 606, "UNWANTED": 607,
}
# switch_channel.c CAUSE_CHART: the names hangup() understands.
CAUSE_NAMES = set("""
    NONE UNALLOCATED_NUMBER NO_ROUTE_TRANSIT_NET NO_ROUTE_DESTINATION CHANNEL_UNACCEPTABLE
    CALL_AWARDED_DELIVERED NORMAL_CLEARING USER_BUSY NO_USER_RESPONSE NO_ANSWER SUBSCRIBER_ABSENT
    CALL_REJECTED NUMBER_CHANGED REDIRECTION_TO_NEW_DESTINATION EXCHANGE_ROUTING_ERROR
    DESTINATION_OUT_OF_ORDER INVALID_NUMBER_FORMAT FACILITY_REJECTED RESPONSE_TO_STATUS_ENQUIRY
    NORMAL_UNSPECIFIED NORMAL_CIRCUIT_CONGESTION NETWORK_OUT_OF_ORDER NORMAL_TEMPORARY_FAILURE
    SWITCH_CONGESTION ACCESS_INFO_DISCARDED REQUESTED_CHAN_UNAVAIL PRE_EMPTED FACILITY_NOT_SUBSCRIBED
    OUTGOING_CALL_BARRED INCOMING_CALL_BARRED BEARERCAPABILITY_NOTAUTH BEARERCAPABILITY_NOTAVAIL
    SERVICE_UNAVAILABLE BEARERCAPABILITY_NOTIMPL CHAN_NOT_IMPLEMENTED FACILITY_NOT_IMPLEMENTED
    SERVICE_NOT_IMPLEMENTED INVALID_CALL_REFERENCE INCOMPATIBLE_DESTINATION INVALID_MSG_UNSPECIFIED
    MANDATORY_IE_MISSING MESSAGE_TYPE_NONEXIST WRONG_MESSAGE IE_NONEXIST INVALID_IE_CONTENTS
    WRONG_CALL_STATE RECOVERY_ON_TIMER_EXPIRE MANDATORY_IE_LENGTH_ERROR PROTOCOL_ERROR INTERWORKING
    SUCCESS ORIGINATOR_CANCEL CRASH SYSTEM_SHUTDOWN LOSE_RACE MANAGER_REQUEST BLIND_TRANSFER
    ATTENDED_TRANSFER ALLOTTED_TIMEOUT USER_CHALLENGE MEDIA_TIMEOUT PICKED_OFF USER_NOT_REGISTERED
    PROGRESS_TIMEOUT INVALID_GATEWAY GATEWAY_DOWN INVALID_URL INVALID_PROFILE NO_PICKUP
    SRTP_READ_ERROR BOWOUT BUSY_EVERYWHERE DECLINE DOES_NOT_EXIST_ANYWHERE NOT_ACCEPTABLE UNWANTED
    NO_IDENTITY BAD_IDENTITY_INFO UNSUPPORTED_CERTIFICATE INVALID_IDENTITY""".split())
CAUSE_Q850 = {
    "NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19,
    "CALL_REJECTED": 21, "NUMBER_CHANGED": 22, "INVALID_NUMBER_FORMAT": 28,
    "NORMAL_CIRCUIT_CONGESTION": 34, "NORMAL_TEMPORARY_FAILURE": 41,
    "NO_ROUTE_DESTINATION": 3, "OUTGOING_CALL_BARRED": 52, "ORIGINATOR_CANCEL": 487,
    "ALLOTTED_TIMEOUT": 602, "INVALID_GATEWAY": 608, "GATEWAY_DOWN": 609,
    "DESTINATION_OUT_OF_ORDER": 27, "UNALLOCATED_NUMBER": 1, "SUBSCRIBER_ABSENT": 20,
}
DIALSTATUS = {"ORIGINATOR_CANCEL": "CANCEL", "USER_BUSY": "BUSY", "NO_ANSWER": "NOANSWER",
              "NO_USER_RESPONSE": "NOANSWER", "DESTINATION_OUT_OF_ORDER": "CHANUNAVAIL",
              "NORMAL_CIRCUIT_CONGESTION": "CONGESTION"}
NEVER_HANGS_UP = {"NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL"}
KNOWN_APPS = {"set", "unset", "export", "bridge", "limit_execute", "sched_hangup", "pre_answer", "answer",
              "playback", "hangup", "respond", "log", "sleep", "ring_ready"}


def _truthy(value) -> bool:
    """switch_true()."""
    return str(value).lower() in ("yes", "on", "true", "t", "enabled", "active", "allow") or (
        str(value).isdigit() and int(value) != 0)


@dataclass
class Outcome:
    """What the far end does when a gateway is tried."""
    cause: str | None = None       # None: answers
    sip: int | None = None         # SIP code the carrier sent (proto specific cause)
    ring: int = 2                  # seconds of ringing before the outcome
    talk: int = 60                 # seconds of conversation when answered
    caller_cancels: bool = False   # the caller hangs up while it rings

    @classmethod
    def answer(cls, talk: int = 60, ring: int = 2) -> "Outcome":
        return cls(talk=talk, ring=ring)


class LuaError(Exception):
    pass


class Host:
    """One FreeSWITCH box: global variables, limit counters, logs, the database."""

    def __init__(self, flavour: str, conn=None, *, globals_: dict | None = None, db_down: bool = False,
                 db_stalls: bool = False, switch_tz: str = "UTC", clock: float = 1_790_000_000.0):
        self.flavour = flavour
        self.module = importlib.import_module(f"lupa.{flavour}")
        self.conn = conn
        self.db_down = db_down
        # A database that never answers: a luarun worker never gets back to its call.
        self.db_stalls = db_stalls
        self.channels: dict[str, "Channel"] = {}
        self.tasks: list[dict] = []        # the scheduler: {when, group, kind, uuid, cause, command}
        self.workers_started = 0
        self.handles_flushed = 0
        self.globals = dict(globals_ or {})
        self.limits: Counter = Counter()
        self.limit_peaks: Counter = Counter()
        self.logs: list[tuple[str, str]] = []
        self.queries: list[str] = []
        self.api_commands: list[str] = []
        self.gateways: dict[str, Outcome] = {}
        self.switch_tz = ZoneInfo(switch_tz)
        self.clock = clock
        self.dbh_opened = 0
        self.dbh_released = 0

    # ------------------------------------------------------------------ Lua states
    def new_state(self):
        lua = self.module.LuaRuntime(unpack_returned_tuples=True)
        lua.execute("package.path = ... .. '/?.lua;' .. package.path", str(SCRIPTS))
        install = lua.eval("""function(console_log, get_global, set_global, api, get_time, msleep, dbh)
            freeswitch = {}
            freeswitch.consoleLog = function(level, message) console_log(level, message) end
            freeswitch.getGlobalVariable = function(name) return get_global(name) end
            freeswitch.setGlobalVariable = function(name, value) set_global(name, value) end
            freeswitch.msleep = function(ms) msleep(ms) end
            freeswitch.API = function()
                return {
                    executeString = function(self, command) return api(command) end,
                    getTime = function(self) return get_time() end,
                }
            end
            freeswitch.Dbh = function(dsn, user, pass) return dbh(dsn) end
        end""")
        install(self._console_log, self._get_global, self._set_global, self._api,
                lambda: str(int(self.clock * 1000)), self._msleep,
                lambda dsn: DbHandle(self, lua, dsn).lua_object())
        return lua

    def _set_global(self, name, value):
        if value is None:
            self.globals.pop(str(name), None)
        else:
            self.globals[str(name)] = str(value)

    def _msleep(self, ms):
        self.clock += float(ms) / 1000

    def _console_log(self, level, message):
        self.logs.append((str(level), str(message)))

    def _get_global(self, name):
        return self.globals.get(name)

    def _api(self, command):
        self.api_commands.append(command)
        name, _, args = str(command).partition(" ")
        if name == "limit_usage":
            _backend, realm, ident = args.split()[:3]
            return str(self.limits[(realm, ident)])
        if name == "global_getvar":
            return self.globals.get(args, "")
        if name == "global_setvar":
            var, _, value = args.partition("=")
            self.globals[var.strip()] = value.strip()
            return "+OK"
        if name == "luarun":
            return self._luarun(args)
        if name == "uuid_getvar":
            uuid, _, var = args.partition(" ")
            channel = self.channels.get(uuid)
            if channel is None or not channel.up:
                return "-ERR No such channel!\n"
            value = channel.get_variable(var.strip())
            return "_undef_" if value is None else value
        if name == "uuid_setvar":
            parts = _separate_string(args, 3)
            channel = self.channels.get(parts[0]) if parts else None
            if channel is None or not channel.up:
                return "-ERR No such channel!\n"
            channel.set_variable(parts[1], parts[2] if len(parts) > 2 else None)
            return "+OK\n"
        if name == "uuid_exists":
            channel = self.channels.get(args.strip())
            return "true" if channel is not None and channel.up else "false"
        if name == "sched_api":
            when, group, command = args.split(" ", 2)
            self.tasks.append({"when": self._when(when), "group": group, "kind": "api", "command": command})
            return "+OK Added: %d\n" % len(self.tasks)
        if name == "sched_del":
            before = len(self.tasks)
            self.tasks = [t for t in self.tasks if t["group"] != args.strip()]
            return "+OK Deleted: %d\n" % (before - len(self.tasks))
        if name == "sched_hangup":
            parts = args.split()
            channel = self.channels.get(parts[1]) if len(parts) > 1 else None
            if channel is None or not channel.up:
                return "-ERR No such channel!\n"
            self.schedule_hangup(self._when(parts[0]), parts[1], parts[2] if len(parts) > 2 else "ALLOTTED_TIMEOUT")
            return "+OK\n"
        if name == "strepoch" and not args.strip():
            return str(int(self.clock))
        if name == "fsctl" and args.strip() == "flush_db_handles":
            self.handles_flushed += 1
            return "+OK\n"
        return "-ERR emulator has no API " + name

    def _when(self, text: str) -> int:
        """A scheduler time: +N seconds from now, else an absolute epoch (whole seconds)."""
        return int(self.clock) + int(text[1:]) if text.startswith("+") else int(text)

    def schedule_hangup(self, when: int, uuid: str, cause: str) -> None:
        self.tasks.append({"when": when, "group": uuid, "kind": "hangup", "uuid": uuid, "cause": cause})

    def next_task(self):
        return min(self.tasks, key=lambda t: t["when"]) if self.tasks else None

    def run_task(self, task) -> None:
        self.tasks.remove(task)
        if task["kind"] == "api":
            self._api(task["command"])
        else:
            channel = self.channels.get(task["uuid"])
            if channel is not None:
                channel.hangup(task["cause"])

    def _luarun(self, args):
        """mod_lua's luarun: a fresh state in a thread of its own; returns at once."""
        parts = args.split(" ")
        script = parts[0]
        self.workers_started += 1
        if self.db_stalls:
            return "+OK\n"
        lua = self.new_state()
        g = lua.globals()
        g.argv = lua.table_from({i: v for i, v in enumerate(parts)})
        try:
            g.dofile(str(SCRIPTS / script))
        except self.module.LuaError as exc:
            self.logs.append(("err", f"mod_lua: {exc}\n"))
        return "+OK\n"

    def log_text(self) -> str:
        return "".join(message for _level, message in self.logs)

    def errors(self) -> list[str]:
        return [message for level, message in self.logs if level == "err"]

    # ------------------------------------------------------------------ scripts
    def call(self, **kw) -> "Channel":
        return Channel(self, **kw)

    def route(self, channel: "Channel") -> "Channel":
        """`lua billing/route.lua` in the dialplan, then the end of the call."""
        lua = self.new_state()
        channel.bind(lua)
        try:
            self.run_script_in(lua, "billing/route.lua", {"session": channel.lua_obj})
        except LuaError:
            pass
        if channel.ready():
            channel.fell_through = True     # the dialplan continues after `lua`: its safety net
            for app, data in DIALPLAN_AFTER_LUA:
                channel.execute(app, data)
        channel.finish()
        return channel

    def run_script_in(self, lua, relative, set_globals):
        g = lua.globals()
        for key, value in set_globals.items():
            g[key] = value
        g.argv = lua.table_from({0: relative})
        try:
            g.dofile(str(SCRIPTS / relative))
        except self.module.LuaError as exc:
            self.logs.append(("err", f"mod_lua: {exc}\n"))
            raise LuaError(str(exc)) from exc

    def xml_fetch(self, section: str, tag_name: str | None = None, key_name: str | None = None,
                  key_value: str | None = None, params: dict | None = None) -> str | None:
        """mod_lua's lua_fetch: a fresh state with XML_REQUEST and params; returns XML_STRING."""
        lua = self.new_state()
        request = lua.table_from({k: v for k, v in {"section": section, "tag_name": tag_name,
                                                     "key_name": key_name, "key_value": key_value}.items()
                                  if v is not None})
        headers = dict(params or {})
        event = lua.eval("function(get) return { getHeader = function(self, name) return get(name) end } end")(
            lambda name: headers.get(name))
        try:
            self.run_script_in(lua, "billing/xml_handler.lua", {"XML_REQUEST": request, "params": event})
        except LuaError:
            return None
        value = lua.globals().XML_STRING
        return None if value is None else str(value)

    # ------------------------------------------------------------------ CDRs
    def cdr_insert_sql(self, channel: "Channel", conf: Path = CONF / "autoload_configs" / "cdr_pg_csv.conf.xml") -> str:
        """mod_cdr_pg_csv's my_on_reporting + insert_cdr, from the real config file."""
        root = ET.parse(conf).getroot()
        settings = {p.get("name"): p.get("value") for p in root.find("settings").findall("param")}
        fields = root.find("schema").findall("field")
        columns, values = [], []
        for f in fields:
            var = f.get("var")
            columns.append(f.get("column") or var)
            value = channel.get_variable(var)
            if value is not None:
                value = value.replace("'", "''")          # PQescapeString
            if f.get("not-null", "").startswith("true") is False and not value:
                values.append("null")
            else:
                quoted = f.get("quote", "").startswith("false") is False
                text = (value or "").replace("'", "''")  # switch_mprintf %q
                values.append(f"'{text}'" if quoted else text)
        return f"INSERT INTO {settings['db-table']} ({','.join(columns)}) VALUES ({','.join(values)});"

    def cdr_insert(self, channel: "Channel", conn=None) -> None:
        conn = conn or self.conn
        with conn.cursor() as cur:
            cur.execute(self.cdr_insert_sql(channel))


def _separate_string(text: str, limit: int) -> list[str]:
    """switch_separate_string(buf, ' ', argv, limit): split on spaces outside single
    quotes, then strip the quotes and backslash escapes of every part."""
    parts, current, quoted, i = [], "", False, 0
    text = text.lstrip(" ")
    while i < len(text):
        c = text[i]
        if len(parts) == limit - 1:
            current = text[i:]
            break
        if c == "\\" and i + 1 < len(text):
            current += c + text[i + 1]
            i += 2
            continue
        if c == "'":
            quoted = not quoted
        if c == " " and not quoted:
            parts.append(current)
            current = ""
            while i + 1 < len(text) and text[i + 1] == " ":
                i += 1
        else:
            current += c
        i += 1
    parts.append(current)

    def clean(part):
        out, j = "", 0
        while j < len(part):
            if part[j] == "\\" and j + 1 < len(part):
                out += part[j + 1]
                j += 2
                continue
            if part[j] != "'":
                out += part[j]
            j += 1
        return out.strip(" ")
    return [clean(p) for p in parts]


def _dialplan_after_lua() -> list[tuple[str, str]]:
    """The actions of conf/dialplan/billing.xml's billing_route after `lua`."""
    root = ET.parse(CONF / "dialplan" / "billing.xml").getroot()
    actions = [(a.get("application"), a.get("data") or "")
               for a in root.find("./context[@name='default']/extension/condition").findall("action")]
    names = [a for a, _ in actions]
    return actions[names.index("lua") + 1:]


DIALPLAN_AFTER_LUA = _dialplan_after_lua()


class DbHandle:
    """freeswitch.Dbh over a real PostgreSQL connection."""

    def __init__(self, host: Host, lua, dsn):
        self.host = host
        self.lua = lua
        self.dsn = dsn
        self.err = None
        self.affected = 0
        self.live = not host.db_down and host.conn is not None and bool(dsn)
        if self.live:
            host.dbh_opened += 1
        else:
            host.logs.append(("err", "Connection failed.  DBH NOT Connected.\n"))

    def lua_object(self):
        obj = self.lua.table()
        obj.connected = lambda _self: self.live
        obj.query = lambda _self, sql_text=None, fn=None: self.query(sql_text, fn)
        obj.last_error = lambda _self: self.err
        obj.affected_rows = lambda _self: self.affected
        obj.release = lambda _self: self.release()
        return obj

    def release(self):
        if self.live:
            self.host.dbh_released += 1
        self.live = False
        return True

    def _stops(self, value) -> bool:
        if value is None or isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return int(value) != 0
        if isinstance(value, (str, bytes)):
            number = self.lua.globals().tonumber(value)
            return number is not None and int(number) != 0
        return False

    def query(self, sql_text, fn):
        self.err = None
        if not sql_text:
            self.host.logs.append(("err", "Missing SQL query.\n"))
            return False
        if not self.live:
            self.host.logs.append(("err", "DBH NOT Connected.\n"))
            return False
        sql_text = str(sql_text)
        self.host.queries.append(sql_text)
        conn = self.host.conn
        cur = conn.cursor()
        psycopg2.extensions.register_type(_RAW, cur)
        atomic = not conn.autocommit
        try:
            if atomic:
                cur.execute("SAVEPOINT fs_dbh")
            cur.execute(sql_text)
            description = cur.description
            rows = cur.fetchall() if description else []
            self.affected = max(cur.rowcount, 0)
            if atomic:
                cur.execute("RELEASE SAVEPOINT fs_dbh")
        except psycopg2.Error as exc:
            if atomic:
                cur.execute("ROLLBACK TO SAVEPOINT fs_dbh")
            # PQerrorMessage: the server's text, "ERROR:  ..." (pgerror), as mod_pgsql reports it
            self.err = (exc.pgerror or str(exc)).strip()
            self.host.logs.append(("err", f"SQL ERR: [{sql_text}] {self.err}\n"))
            return False
        finally:
            cur.close()
        if fn is None or not description:
            return True
        names = [d.name for d in description]
        for row in rows:
            table = self.lua.table()
            for name, value in zip(names, row):
                table[name] = "" if value is None else (value if isinstance(value, str) else str(value))
            try:
                result = fn(table)
            except self.host.module.LuaError as exc:
                self.host.logs.append(("err", f"callback error: {exc}\n"))
                break
            if isinstance(result, tuple):
                result = result[0] if result else None
            if self._stops(result):
                break
        return True


class Channel:
    """An inbound call's A-leg as the dialplan sees it."""

    PROFILE_FIELDS = ("destination_number", "caller_id_number", "network_addr", "uuid", "context")

    def __init__(self, host: Host, *, destination: str, caller_id: str = "0033100000000",
                 network_addr: str = "198.51.100.7", uuid: str | None = None, context: str = "default",
                 variables: dict | None = None):
        import uuid as uuidlib

        self.host = host
        self.profile = {"destination_number": destination, "caller_id_number": caller_id,
                        "network_addr": network_addr, "uuid": uuid or str(uuidlib.uuid4()), "context": context}
        self.vars: dict[str, str] = {"sip_network_ip": network_addr, "sip_received_ip": network_addr}
        self.vars.update(variables or {})
        self.executed: list[tuple[str, str]] = []
        self.bridges: list[dict] = []
        self.hangup_cause: str | None = None
        self.sip_response: int | None = None
        self.up = True
        self.fell_through = False
        self.created = host.clock
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.pre_answered = False
        self.response_headers: dict[str, str] = {}
        self.lua_obj = None
        host.channels[self.uuid] = self

    @property
    def uuid(self) -> str:
        return self.profile["uuid"]

    # ------------------------------------------------------------------ variables
    def get_variable(self, name):
        if name in self.vars:
            return self.vars[name]
        if name in self.PROFILE_FIELDS:
            return self.profile[name]
        return self.host.globals.get(name)

    def set_variable(self, name, value):
        if value is None:
            self.vars.pop(name, None)
        else:
            self.vars[name] = self._lua_string(value)

    def _lua_string(self, value) -> str:
        if isinstance(value, bool):
            raise TypeError("setVariable takes a string")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return str(self._lua.globals().tostring(value))
        return str(value)

    def expand(self, data: str) -> str:
        """${var}, and ${api(args)} which runs an API command (switch_channel_expand_variables)."""
        def one(m):
            call = re.match(r"^([A-Za-z_]+)\((.*)\)$", m.group(1))
            if call:
                return str(self.host._api(f"{call.group(1)} {call.group(2)}".strip()))
            return self.get_variable(m.group(1)) or ""
        return re.sub(r"\$\{([^}]+)\}", one, data or "")

    # ------------------------------------------------------------------ Lua object
    def bind(self, lua):
        self._lua = lua
        obj = lua.table()
        obj.getVariable = lambda _s, name: self.get_variable(name)
        obj.setVariable = lambda _s, name, value=None: self.set_variable(name, value)
        obj.execute = lambda _s, app, data=None: self.execute(app, data)
        obj.ready = lambda _s: self.ready()
        obj.answered = lambda _s: self.answered_at is not None
        obj.answer = lambda _s: self.answer()
        obj.preAnswer = lambda _s: self.pre_answer()
        obj.hangup = lambda _s, cause="NORMAL_CLEARING": self.hangup(cause)
        obj.getState = lambda _s: "CS_EXECUTE" if self.up else "CS_HANGUP"
        self.lua_obj = obj

    def ready(self) -> bool:
        return self.up

    def answer(self):
        if self.up and self.answered_at is None:
            self.answered_at = self.host.clock
        return 1 if self.up else 0

    def pre_answer(self):
        self.pre_answered = True
        return 1

    # ------------------------------------------------------------------ applications
    def execute(self, app, data=None):
        app = str(app)
        data = self.expand(str(data) if data is not None else "")
        self.executed.append((app, data))
        if not self.up:
            return None
        if app not in KNOWN_APPS:
            self.host.logs.append(("err", f"Invalid Application {app}\n"))
            self.hangup("DESTINATION_OUT_OF_ORDER")
            return None
        getattr(self, "_app_" + app)(data)
        return None

    def _app_set(self, data):
        name, _, value = data.partition("=")
        self.set_variable(name, value or None)

    _app_export = _app_set

    def _app_unset(self, data):
        self.vars.pop(data, None)

    def _app_pre_answer(self, data):
        self.pre_answered = True

    _app_ring_ready = _app_pre_answer

    def _app_answer(self, data):
        self.answer()

    def _app_playback(self, data):
        pass

    def _app_log(self, data):
        pass

    def _app_sleep(self, data):
        self.host.clock += int(data or 0) / 1000

    def _app_respond(self, data):
        code = int(data.split()[0])
        self.sip_response = code
        self.hangup("CALL_REJECTED", respond_code=code)

    def _app_hangup(self, data):
        self.hangup(data or "NORMAL_CLEARING")

    def _app_sched_hangup(self, data):
        parts = data.split()
        cause = parts[1] if len(parts) > 1 else "ALLOTTED_TIMEOUT"
        self.host.schedule_hangup(self.host._when(parts[0]), self.uuid, cause)

    @property
    def scheduled_hangups(self) -> list[int]:
        return sorted(t["when"] for t in self.host.tasks if t["kind"] == "hangup" and t["uuid"] == self.uuid)

    def _app_limit_execute(self, data):
        argv = data.split(" ", 5)
        if len(argv) < 6:
            self.host.logs.append(("err", "USAGE: limit_execute <backend> <realm> <id> <max> <app> <data>\n"))
            return
        backend, realm, ident, max_text, app, app_arg = argv
        assert backend == "hash", "the emulator implements the hash backend"
        maximum = int(max_text.split("/")[0]) if not max_text.startswith("-") else -1
        key = (realm, ident)
        if maximum >= 0 and self.host.limits[key] + 1 > maximum:
            self.host.logs.append(("info", f"Usage for {realm}_{ident} exceeds maximum rate of {maximum}\n"))
            return
        self.host.limits[key] += 1
        self.host.limit_peaks[key] = max(self.host.limit_peaks[key], self.host.limits[key])
        try:
            self.execute(app, app_arg)
        finally:
            self.host.limits[key] -= 1

    def _app_bridge(self, data):
        targets = data.split("|")
        for target in targets:
            if "," in target.split("}")[-1]:
                raise NotImplementedError("simultaneous dialing is not emulated")
            if self._originate(target):
                return
            if not self.up:
                return
        cause = self.vars.get("originate_disposition")
        self._handle_cause(cause)

    def _originate(self, target: str) -> bool:
        """One originate: True when answered (and the bridge has ended)."""
        leg_vars = {}
        m = re.match(r"^(\{[^}]*\})?(\[[^\]]*\])?(.*)$", target)
        for group in (m.group(1), m.group(2)):
            if group:
                for pair in group[1:-1].split(","):
                    k, _, v = pair.partition("=")
                    leg_vars[k] = v
        dial = m.group(3)
        gw = re.match(r"^sofia/gateway/([^/]+)/(.+)$", dial)
        gateway, number = (gw.group(1), gw.group(2)) if gw else (dial, "")
        outcome = self.host.gateways.get(gateway, Outcome(cause="INVALID_GATEWAY", ring=0))
        snapshot = {k: self.vars.get(k) for k in ("billing_route_seq", "billing_gateway", "billing_provider_id",
                                                   "billing_cost_rate", "bypass_media", "ignore_early_media",
                                                   "absolute_codec_string", "execute_on_answer")}
        self.bridges.append({"gateway": gateway, "number": number, "leg_vars": leg_vars, "vars": snapshot,
                             "limit_usage": dict(self.host.limits)})
        self.host.clock += outcome.ring
        if outcome.caller_cancels:
            self._fail("ORIGINATOR_CANCEL", None)
            self.hangup("ORIGINATOR_CANCEL")
            return False
        if outcome.cause:
            self._fail(outcome.cause, outcome.sip)
            return False
        # answered: 1.10.12 sets "call accepted", then overwrites it with the cause name
        # of SUCCESS (switch_ivr_originate.c), and DIALSTATUS likewise.
        self.vars["originate_disposition"] = "SUCCESS"
        self.vars["DIALSTATUS"] = "SUCCESS"
        self.answered_at = self.host.clock
        for name in sorted(k for k in self.vars if k.startswith("execute_on_answer")):
            app, _, args = self.vars[name].partition(" ")
            self.execute(app, args)
        for name in sorted(k for k in self.vars if k.startswith("api_on_answer")):
            self.host._api(self.expand(self.vars[name]))
        # The conversation: the scheduler runs what falls due before the callee hangs up
        # (a re-authorization may move the cut; the cut ends the call).
        end = self.host.clock + outcome.talk
        while self.up:
            task = self.host.next_task()
            if task is None or task["when"] >= end:
                break
            self.host.clock = max(self.host.clock, float(task["when"]))
            self.host.run_task(task)
        self.vars["last_bridge_hangup_cause"] = "NORMAL_CLEARING"
        self.vars["bridge_hangup_cause"] = "NORMAL_CLEARING"
        if not self.up:
            return True
        self.host.clock = end
        if _truthy(self.vars.get("hangup_after_bridge", "false")):
            self.hangup("NORMAL_CLEARING")
        return True

    def _fail(self, cause, sip):
        self.vars["originate_disposition"] = cause
        self.vars["originate_failed_cause"] = cause
        self.vars["DIALSTATUS"] = DIALSTATUS.get(cause, "CHANUNAVAIL")
        self.vars["last_bridge_hangup_cause"] = cause
        if sip:
            self.vars["last_bridge_proto_specific_hangup_cause"] = f"sip:{sip}"
        else:
            self.vars.pop("last_bridge_proto_specific_hangup_cause", None)

    def _handle_cause(self, cause):
        """switch_channel_handle_cause after a failed bridge."""
        if not self.up or cause is None or cause == "SUCCESS":
            return
        cof = self.vars.get("continue_on_fail")
        if cof is not None:
            if _truthy(cof):
                return
            allowed = {c.strip().upper() for c in cof.split(",")}
            if cause.upper() in allowed or str(CAUSE_Q850.get(cause, -1)) in allowed:
                return
        elif cause in NEVER_HANGS_UP:
            return
        self.hangup(cause)

    # ------------------------------------------------------------------ hangup and CDR
    def hangup(self, cause="NORMAL_CLEARING", respond_code=None):
        if not self.up:
            return
        cause = str(cause or "NORMAL_CLEARING").upper()
        if cause not in CAUSE_NAMES or cause == "NONE":
            cause = "NORMAL_CLEARING"      # switch_channel_str2cause's default
        self.up = False
        if self.vars.get("api_hangup_hook"):
            self.host._api(self.expand(self.vars["api_hangup_hook"]))
        self.hangup_cause = cause
        self.ended_at = self.host.clock
        if self.answered_at is None:
            ps = self.vars.get("last_bridge_proto_specific_hangup_cause", "")
            code = respond_code or CAUSE_TO_SIP.get(cause, 480)
            if not respond_code and ps.startswith("sip:") and ps[4:].isdigit() and int(ps[4:]):
                code = int(ps[4:])
            self.sip_response = code
            self.response_headers = {k[len("sip_rh_"):]: v for k, v in self.vars.items() if k.startswith("sip_rh_")}
            self.vars["sip_hangup_disposition"] = "send_refuse"
        else:
            self.vars["sip_hangup_disposition"] = "send_bye"

    def finish(self):
        """switch_channel_set_timestamps at the end of the call."""
        if self.up:
            self.hangup("NORMAL_CLEARING")
        tz = self.host.switch_tz

        def stamp(t):
            return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")

        end = self.ended_at if self.ended_at is not None else self.host.clock
        self.vars["hangup_cause"] = self.hangup_cause
        self.vars["hangup_cause_q850"] = str(CAUSE_Q850.get(self.hangup_cause, 16))
        self.vars["start_stamp"] = stamp(self.created)
        self.vars["end_stamp"] = stamp(end)
        self.vars["start_epoch"] = str(int(self.created))
        self.vars["end_epoch"] = str(int(end))
        self.vars["duration"] = str(int(end) - int(self.created))
        if self.answered_at is not None:
            self.vars["answer_stamp"] = stamp(self.answered_at)
            self.vars["answer_epoch"] = str(int(self.answered_at))
            self.vars["billsec"] = str(int(end) - int(self.answered_at))
            self.vars["billmsec"] = str(int((end - self.answered_at) * 1000))
        else:
            self.vars["answer_epoch"] = "0"
            self.vars["billsec"] = "0"
            self.vars["billmsec"] = "0"

    # ------------------------------------------------------------------ helpers for tests
    def apps(self, name: str) -> list[str]:
        return [data for app, data in self.executed if app == name]


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
