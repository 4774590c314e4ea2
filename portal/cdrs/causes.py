"""Hang-up causes in words: FreeSWITCH cause names with their Q.850 codes, SIP
response codes and FreeSWITCH's sip_hangup_disposition.

Sources: FreeSWITCH's switch_channel.c CAUSE_CHART (name <-> Q.850 value) and
sofia's hangup_cause_to_sip (its SIP mapping), RFC 3261 section 21 (reason phrases).
"""
from __future__ import annotations

import re

# FreeSWITCH cause name -> (Q.850 value, what it means)
CAUSES = {
    "UNALLOCATED_NUMBER": (1, "the number does not exist"),
    "NO_ROUTE_TRANSIT_NET": (2, "no route to the transit network"),
    "NO_ROUTE_DESTINATION": (3, "no route to the destination"),
    "CHANNEL_UNACCEPTABLE": (6, "channel unacceptable"),
    "NORMAL_CLEARING": (16, "normal end of call"),
    "USER_BUSY": (17, "the called party is busy"),
    "NO_USER_RESPONSE": (18, "no response from the called party (no device answered the set-up)"),
    "NO_ANSWER": (19, "rang, nobody answered"),
    "SUBSCRIBER_ABSENT": (20, "the subscriber is absent"),
    "CALL_REJECTED": (21, "the call was rejected"),
    "NUMBER_CHANGED": (22, "the number has changed"),
    "REDIRECTION_TO_NEW_DESTINATION": (23, "redirected to a new destination"),
    "EXCHANGE_ROUTING_ERROR": (25, "routing error in an exchange"),
    "DESTINATION_OUT_OF_ORDER": (27, "the destination is out of order"),
    "INVALID_NUMBER_FORMAT": (28, "invalid number format"),
    "FACILITY_REJECTED": (29, "facility rejected"),
    "RESPONSE_TO_STATUS_ENQUIRY": (30, "response to status enquiry"),
    "NORMAL_UNSPECIFIED": (31, "normal, unspecified"),
    "NORMAL_CIRCUIT_CONGESTION": (34, "no circuit available (congestion)"),
    "NETWORK_OUT_OF_ORDER": (38, "the network is out of order"),
    "NORMAL_TEMPORARY_FAILURE": (41, "temporary failure"),
    "SWITCH_CONGESTION": (42, "switching equipment congestion"),
    "ACCESS_INFO_DISCARDED": (43, "access information discarded"),
    "REQUESTED_CHAN_UNAVAIL": (44, "the requested channel is not available"),
    "PRE_EMPTED": (45, "pre-empted"),
    "FACILITY_NOT_SUBSCRIBED": (50, "facility not subscribed"),
    "OUTGOING_CALL_BARRED": (52, "outgoing calls barred"),
    "INCOMING_CALL_BARRED": (54, "incoming calls barred"),
    "BEARERCAPABILITY_NOTAUTH": (57, "bearer capability not authorised"),
    "BEARERCAPABILITY_NOTAVAIL": (58, "bearer capability not available"),
    "SERVICE_UNAVAILABLE": (63, "service not available"),
    "BEARERCAPABILITY_NOTIMPL": (65, "bearer capability not implemented"),
    "CHAN_NOT_IMPLEMENTED": (66, "channel type not implemented"),
    "FACILITY_NOT_IMPLEMENTED": (69, "facility not implemented"),
    "SERVICE_NOT_IMPLEMENTED": (79, "service not implemented"),
    "INVALID_CALL_REFERENCE": (81, "invalid call reference"),
    "INCOMPATIBLE_DESTINATION": (88, "incompatible destination (e.g. no common codec)"),
    "INVALID_MSG_UNSPECIFIED": (95, "invalid message"),
    "MANDATORY_IE_MISSING": (96, "mandatory information missing"),
    "MESSAGE_TYPE_NONEXIST": (97, "message type does not exist"),
    "WRONG_MESSAGE": (98, "wrong message"),
    "IE_NONEXIST": (99, "information element does not exist"),
    "INVALID_IE_CONTENTS": (100, "invalid information element contents"),
    "WRONG_CALL_STATE": (101, "wrong call state"),
    "RECOVERY_ON_TIMER_EXPIRE": (102, "timer expired (no answer to a signalling message in time)"),
    "MANDATORY_IE_LENGTH_ERROR": (103, "information element length error"),
    "PROTOCOL_ERROR": (111, "protocol error"),
    "INTERWORKING": (127, "interworking error"),
    "SUCCESS": (142, "success"),
    "ORIGINATOR_CANCEL": (487, "the caller hung up before the answer"),
    "CRASH": (700, "FreeSWITCH crashed"),
    "SYSTEM_SHUTDOWN": (701, "FreeSWITCH was shutting down"),
    "LOSE_RACE": (502, "another leg answered first"),
    "MANAGER_REQUEST": (503, "hung up by an operator (API)"),
    "BLIND_TRANSFER": (600, "blind transfer"),
    "ATTENDED_TRANSFER": (601, "attended transfer"),
    "ALLOTTED_TIMEOUT": (602, "the call reached the time its funds allowed"),
    "USER_CHALLENGE": (603, "authentication challenge"),
    "MEDIA_TIMEOUT": (604, "no media (RTP) received"),
    "PICKED_OFF": (605, "picked up elsewhere"),
    "USER_NOT_REGISTERED": (606, "the user is not registered"),
    "PROGRESS_TIMEOUT": (607, "no progress in time"),
    "GATEWAY_DOWN": (609, "the gateway is down"),
}

SIP_REASONS = {
    200: "OK", 300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

DISPOSITIONS = {
    "send_bye": "the switch hung up (sent BYE)",
    "recv_bye": "the far end hung up (received BYE)",
    "send_cancel": "the switch cancelled the call before the answer",
    "recv_cancel": "the caller cancelled before the answer",
    "send_refuse": "the switch refused the call",
    "recv_refuse": "the far end refused the call",
}


def cause(name: str | None) -> dict | None:
    """{'name', 'q850', 'text'} of a FreeSWITCH cause name (q850 None when unknown)."""
    if not name:
        return None
    q850, text = CAUSES.get(name, (None, name.replace("_", " ").lower()))
    return {"name": name, "q850": q850, "text": text}


def sip(value) -> dict | None:
    """{'code', 'reason'} of 'sip:486', '486' or 486; None when it is not a SIP code."""
    if value is None:
        return None
    match = re.search(r"(\d{3})", str(value))
    if not match:
        return None
    code = int(match.group(1))
    return {"code": code, "reason": SIP_REASONS.get(code, "")}


def disposition(value: str | None) -> str | None:
    return DISPOSITIONS.get(value or "", value or None)
