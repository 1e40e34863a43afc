"""The README's commands and CI cannot drift apart."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ROOT


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_quick_start_is_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "sarcoma-sched demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _quick_start_commands()[1] in ci


def test_every_command_help_has_an_example(run):
    from sarcoma_sched.cli import cli

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            path = [*prefix, name]
            yield path, cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, path)

    for path, cmd in walk(cli, []):
        if hasattr(cmd, "commands"):
            continue
        helped = run(*path, "--help", check=True).stdout
        assert "Example:" in helped, " ".join(path)


def test_the_code_passes_ruff():
    # ruff comes with the test extra, beside this interpreter even when the venv is not on PATH.
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is missing: pip install -e '.[test]'"
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_completion_as_the_readme_documents_it(command, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "_SARCOMA_SCHED_COMPLETE=bash_source sarcoma-sched" in readme
    env = {"PATH": str(Path(command).parent), "_SARCOMA_SCHED_COMPLETE": "bash_source"}
    script = subprocess.run([command], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert script.returncode == 0
    assert "complete -o nosort -F _sarcoma_sched_completion sarcoma-sched" in script.stdout
    env |= {
        "_SARCOMA_SCHED_COMPLETE": "bash_complete",
        "COMP_WORDS": "sarcoma-sched resch",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([command], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.stdout.split() == ["plain,reschedule"]


def _readme_command_lines() -> list[list[str]]:
    import shlex

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```sh\n(.*?)\n```", readme, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("sarcoma-sched "):
                lines.append(shlex.split(line, comments=True)[1:])
    return lines


def test_every_sarcoma_sched_line_in_the_readme_parses(tmp_path, monkeypatch):
    """Options, choices and dates of each documented command line are valid (not executed)."""
    import click

    from sarcoma_sched.cli import cli

    lines = _readme_command_lines()
    assert len(lines) > 30
    monkeypatch.chdir(tmp_path)
    for args in lines:
        for arg in args:  # input files the examples name exist here, empty
            if arg.endswith((".toml", ".json", ".xlsx", ".csv")):
                (tmp_path / arg).write_text("")
        ctx = cli.make_context("sarcoma-sched", list(args))
        command: click.Command = cli
        rest = [*ctx._protected_args, *ctx.args]
        while isinstance(command, click.Group) and rest:
            name, command, rest = command.resolve_command(ctx, rest)
            ctx = command.make_context(name, rest, parent=ctx)
            rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        # A group that runs by itself (``screen PROTOCOL`` beside ``screen void``) is a command.
        assert not isinstance(command, click.Group) or command.invoke_without_command, args
