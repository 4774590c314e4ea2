"""Item 7: `provision load --dry-run` on 100,000 nested `[` killed the process (exit 139);
depth, size and aliases are now checked before parsing, with a clear error."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from portal.provisioning import yamlio
from tests.conftest import ROOT


def test_the_attack_file_fails_cleanly_in_a_real_process(tmp_path, database_url):
    """A separate process: were the loader to crash again, it would not take pytest with it."""
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 100_000 + "\n")
    env = os.environ | {"DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "provision", "load", "--dry-run", str(path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    assert "line 1, column 51: nested more than 50 levels deep" in result.stderr
    assert "nothing was loaded" in result.stderr


@pytest.mark.parametrize("text", [
    "[" * 100_000, "{a: " * 100_000, "- " * 60 + "x\n",
    "".join(" " * i + f"k{i}:\n" for i in range(60)) + " " * 60 + "v\n",
])
def test_deep_nesting_of_any_kind_is_refused(text):
    with pytest.raises(yamlio.YamlSyntaxError, match="nested more than 50 levels deep"):
        yamlio.parse(text, "f.yaml")


def test_anchors_and_aliases_are_refused():
    laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(yamlio.YamlSyntaxError, match="line 1, column 4: anchors and aliases"):
        yamlio.parse(laughs, "f.yaml")


def test_an_oversized_text_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(yamlio, "MAX_CHARS", 1000)
    with pytest.raises(yamlio.YamlSyntaxError, match="at most 1,000 are read"):
        yamlio.parse("weights: []\n" + "#" * 1000, "f.yaml")


def test_ordinary_files_still_load():
    document = yamlio.parse("customers:\n  - name: acme\n    endpoints:\n      - {name: e, ip: 10.0.0.0/8}\n")
    assert document["customers"][0]["endpoints"][0]["name"] == "e"
    # a syntax error keeps its own message
    with pytest.raises(yamlio.YamlSyntaxError, match="line 2, column 1: did not find expected"):
        yamlio.parse("a: [b\n", "f.yaml")
