"""YAML in and out.

In: PyYAML's safe loader, except that numbers keep their source text (`Number`), so a
money value written `0.02` is read as exactly 0.02 (never through a binary float) and a
duplicate key in a mapping is an error instead of silently keeping the last one.

Out: block style for entities, one flow-style line per rate, destination and link, so a
dump reads like the hand-written example in docs/provisioning.md.
"""
from __future__ import annotations

from datetime import datetime

import yaml
from yaml.constructor import ConstructorError

from .fields import Number

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = set()
            for key_node, _value in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise ConstructorError(None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                    seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _number(loader, node):
    return Number(loader.construct_scalar(node))


Loader.add_constructor("tag:yaml.org,2002:int", _number)
Loader.add_constructor("tag:yaml.org,2002:float", _number)


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; the message names the line."""


# Limits checked before the document is built: PyYAML composes nested collections by
# recursion, so 100,000 nested `[` overflow the C stack and kill the process (no
# exception to catch). The provisioning format nests about six levels deep.
MAX_CHARS = 64 * 1024 * 1024
MAX_DEPTH = 50
_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
         yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def check_limits(text: str, source: str = "<input>") -> None:
    """Refuse a text too large, nested too deep, or using aliases, with a clear message.
    The scanner is iterative (libyaml keeps its levels on the heap), so this pass is safe
    on any input; it stops at the first level beyond the limit."""
    if len(text) > MAX_CHARS:
        raise YamlSyntaxError(f"{source}: the file has {len(text):,} characters; at most {MAX_CHARS:,} are read "
                              "(put large rate decks in CSV files: docs/provisioning.md)")
    depth = 0
    try:
        for token in yaml.scan(text, Loader=_SafeLoader):
            if isinstance(token, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = token.start_mark
                    raise YamlSyntaxError(f"{source}: line {mark.line + 1}, column {mark.column + 1}: nested more than "
                                          f"{MAX_DEPTH} levels deep; a provisioning file needs about six")
            elif isinstance(token, _CLOSE):
                depth -= 1
            elif isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                mark = token.start_mark
                raise YamlSyntaxError(f"{source}: line {mark.line + 1}, column {mark.column + 1}: anchors and aliases "
                                      "(&name, *name) are not supported: write each entry out")
    except yaml.MarkedYAMLError:
        return  # a syntax error: the parser reports it with its line below


def parse(text: str, source: str = "<input>"):
    check_limits(text, source)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = exc.problem or exc.context or "not valid YAML"
        raise YamlSyntaxError(f"{source}: {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{source}: not valid YAML: {exc}") from None


class FlowMap(dict):
    """A mapping written on one line: `{prefix: '33', rate: '0.02'}`."""


class FlowList(list):
    """A list written on one line: `[local, mobile]`."""


class Dumper(yaml.SafeDumper):
    # Indent list items under their key, like the hand-written example.
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


Dumper.add_representer(FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True))
Dumper.add_representer(FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


# A date-time as an ISO 8601 string: PyYAML would tag a plain one `!!timestamp` inside a
# flow mapping (its ':' must be quoted there); the loader reads the string back.
Dumper.add_representer(datetime, lambda d, data: d.represent_str(data.isoformat()))


def emit(document: dict) -> str:
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=10_000)
