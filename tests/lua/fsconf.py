"""FreeSWITCH's XML preprocessor, ported from src/switch_xml.c (preprocess, 1.10.12), so the
fast tier reads freeswitch/conf exactly as the switch does before its XML parser runs.

What it copies, because a configuration can break on it without any XML parser noticing:

* every line is read before any XML parsing: a ``<X-PRE-PROCESS .../>`` directive runs
  wherever it stands, **inside XML comments too** (only the old ``<!--#cmd ...-->``
  syntax knows comments);
* ``$${name}`` is expanded on every line, comments included; an unknown name expands to
  nothing;
* a line containing ``<include>``, ``</include>`` or ``<?`` is dropped whole;
* a line holding the text "x-pre-process" (any case) not preceded by ``<`` is dropped
  whole; a directive line keeps nothing of itself (text before and after it is lost);
* ``include`` globs relative to the including file's folder; more than 100 levels of
  include is an error ("Maximum recursion").
"""
from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path


class RecursionLimit(Exception):
    pass


@dataclass
class Preprocessed:
    text: str
    variables: dict[str, str] = field(default_factory=dict)
    directives: list[tuple[str, str, str, int]] = field(default_factory=list)   # (cmd, data, file, line)


def _expand(line: str, variables: dict[str, str]) -> str:
    if "$${" not in line:
        return line
    out, i = [], 0
    while i < len(line):
        if line.startswith("$${", i):
            depth, j = 1, i + 3
            while j < len(line) and depth:
                if line[j] == "{":
                    depth += 1
                elif line[j] == "}":
                    depth -= 1
                j += 1
            if depth == 0:
                out.append(variables.get(line[i + 3:j - 1], ""))
                i = j
                continue
        out.append(line[i])
        i += 1
    return "".join(out)


_ATTR = re.compile(r'"([^"]*)"')


def _directive(bp: str):
    """(cmd, data) of a directive line, parsed the way preprocess() does, or None."""
    low = bp.lower()
    at = low.find("x-pre-process")
    tail = bp[at:]
    cmd_at = tail.lower().find("cmd")
    if cmd_at < 0:
        return None
    rest = tail[cmd_at:]
    eq = rest.find("=")
    if eq < 0:
        return None
    q = rest.find('"', eq)
    if q < 0:
        return None
    end = rest.find('"', q + 1)
    cmd = rest[q + 1:end if end >= 0 else None]
    after = rest[end + 1:] if end >= 0 else ""
    data_at = after.lower().find("data")
    if data_at < 0:
        return None
    rest = after[data_at:]
    eq = rest.find("=")
    q = rest.find('"', eq) if eq >= 0 else -1
    if q < 0:
        return None
    end = rest.find('"', q + 1)
    return cmd, rest[q + 1:end if end >= 0 else None]


def preprocess(path: Path, variables: dict[str, str] | None = None) -> Preprocessed:
    """The text FreeSWITCH hands its XML parser for `path`, and the global variables set."""
    result = Preprocessed(text="", variables=dict(variables or {}))
    chunks: list[str] = []
    _preprocess(Path(path), chunks, result, 0)
    result.text = "".join(chunks)
    return result


def _preprocess(path: Path, out: list[str], result: Preprocessed, level: int) -> None:
    if level > 100:
        raise RecursionLimit(f"Error including {path} (Maximum recursion limit reached)")
    cwd = path.parent
    multiline = False
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(keepends=True), start=1):
        line = _expand(raw, result.variables)
        if "<include>" in raw or "</include>" in raw or "<?" in raw:
            continue
        bp = line
        if multiline:
            end = bp.find("-->")
            if end < 0:
                continue
            multiline = False
            bp = bp[end + 3:]
        at = bp.lower().find("x-pre-process")
        if at >= 0:
            if at == 0 or bp[at - 1] != "<":
                continue
            parsed = _directive(bp)
            if parsed is None:
                continue
            cmd, data = parsed
            result.directives.append((cmd.lower(), data, str(path), number))
            if cmd.lower() == "set":
                name, sep, value = data.partition("=")
                if sep:
                    result.variables[name.strip()] = value.lstrip(" ")
            elif cmd.lower() == "include":
                pattern = data if data.startswith("/") else str(cwd / data)
                for included in sorted(glob.glob(pattern)):
                    _preprocess(Path(included), out, result, level + 1)
            continue
        old = bp.find("<!--#")
        if old >= 0:
            out.append(bp[:old])
            end = bp.find("-->", old)
            if end >= 0:
                out.append(bp[end + 3:])
            else:
                multiline = True
            words = bp[old + 5:].split(None, 1)
            if words and words[0].lower() == "set" and len(words) > 1:
                name, sep, value = words[1].strip().strip('"').split("-->")[0].strip().strip('"').partition("=")
                if sep:
                    result.variables[name.strip()] = value.strip()
            continue
        out.append(bp)


def comment_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges of the XML comments of a file."""
    return [(m.start(), m.end()) for m in re.finditer(r"<!--.*?-->", text, re.S)]
