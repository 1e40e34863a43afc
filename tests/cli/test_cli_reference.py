"""docs/cli.md, the command reference, cannot drift from the commands' own help."""

import importlib.util
import os
import re
import subprocess

import pytest

from tests.cli.conftest import ROOT

SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sections(text: str) -> dict[str, str]:
    found = re.findall(r"^## (sarcoma-sched[^\n]*)\n\n```text\n(.*?)\n```", text, re.S | re.M)
    return dict(found)


def test_docs_cli_md_is_what_the_commands_say_about_themselves():
    generator = _generator()
    expected = generator.render()
    current = generator.REFERENCE.read_text(encoding="utf-8")
    assert current == expected, f"docs/cli.md is out of date: run {generator.REFRESH}"


def test_every_command_and_group_in_the_reference_has_an_example():
    sections = _sections(_generator().render())
    assert len(sections) > 40
    lacking = [path for path, body in sections.items() if "Example:" not in body]
    assert not lacking, f"add an Example: to the help of {lacking}"


@pytest.mark.parametrize("path", ["sarcoma-sched", "sarcoma-sched protocol show"])
def test_the_reference_shows_what_help_prints_on_an_80_column_terminal(command, tmp_path, path):
    env = {**os.environ, "COLUMNS": "80"}
    args = [command, *path.split()[1:], "--help"]
    printed = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert _sections(_generator().render())[path] == printed.stdout.rstrip()
