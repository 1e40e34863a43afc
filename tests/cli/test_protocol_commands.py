"""The installed ``sarcoma-sched`` command: version, help, protocol validate/list/show, errors."""

import json
import subprocess
import sys

from sarcoma_sched import __version__
from tests.cli.conftest import ROOT

BAD = ROOT / "tests" / "protocols"


def test_version_and_help_work(run):
    out = run("--version", check=True).stdout
    assert __version__ in out
    helped = run("--help", check=True).stdout
    assert "protocol" in helped and "Example" in helped


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "sarcoma_sched", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_protocol_list_as_json_names_every_bundled_protocol(run):
    rows = json.loads(run("protocol", "list", "--format", "json", check=True).stdout)
    assert {r["id"] for r in rows} == {"TNT-STS", "NATARS", "NATARS-R"}
    natars = next(r for r in rows if r["id"] == "NATARS")
    assert natars["allocation"] == "assigned"
    assert natars["sites"] == 7
    assert natars["content_hash"].startswith("sha256:")


def test_protocol_list_as_csv_has_a_header_and_one_row_per_protocol(run):
    lines = run("protocol", "list", "--format", "csv", check=True).stdout.splitlines()
    assert lines[0].startswith("id,version,registry")
    assert len(lines) == 4


def test_show_natars_lists_both_arms_every_event_window_and_constraint(run):
    text = run("protocol", "show", "NATARS", check=True).stdout
    assert "Arm SURGERY_ONLY" in text and "Arm NEOADJUVANT" in text
    for key in ("surgery", "follow_up", "ai", "anlotinib", "restaging"):
        assert f"{key} — " in text
    # Windows in the words of the trial summary.
    assert "window allocation +7 … +28 days" in text  # surgery only
    assert "window allocation +0 … +14 days" in text  # C1D1
    assert "window +20 … +28 days" in text  # cycles 2-3: -1 … +7 around 21 days
    assert "window C3D1 (D1 of ai cycle 3) +28 … +56 days" in text  # neoadjuvant surgery
    assert "D1–D14 shown as one 14-day period" in text
    assert "anlotinib_washout: surgery at least 14 days after C3D14" in text
    assert "ifosfamide_washout: surgery at least 21 days after C3D5" in text
    assert "counted from allocation" in text
    assert "non-randomized" in text
    for i in range(1, 14):
        assert f"INC-{i:02d}" in text
    assert "EXC-02" in text and "[checked after allocation]" in text


def test_show_accepts_json_and_toml_round_trippable_output(run, tmp_path):
    data = json.loads(run("protocol", "show", "tnt-sts", "--format", "json", check=True).stdout)
    assert data["study"]["id"] == "TNT-STS"
    toml = run("protocol", "show", "TNT-STS", "--format", "toml", check=True).stdout
    out = tmp_path / "again.toml"
    out.write_text(toml, encoding="utf-8")
    validated = run("protocol", "validate", str(out), check=True).stdout
    assert "TNT-STS" in validated


def test_unknown_protocol_is_one_line_and_exit_1_without_traceback(run):
    result = run("protocol", "show", "NO-SUCH-PROTOCOL")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: no protocol 'NO-SUCH-PROTOCOL' (known: NATARS-R, NATARS, TNT-STS)"
    ]


def test_validate_reports_each_problem_of_each_file_and_exits_1(run):
    good = ROOT / "protocols" / "natars.toml"
    result = run(
        "protocol",
        "validate",
        str(good),
        str(BAD / "bad_window_reversed.toml"),
        str(BAD / "bad_toml_syntax.toml"),
    )
    assert result.returncode == 1
    assert "ok  " in result.stdout and "NATARS" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(
        f"error: {BAD / 'bad_window_reversed.toml'}: "
        "arms[CONTROL].events[surgery].timing.earliest: "
    )
    assert "TOML syntax error" in errors[1] and "line 8" in errors[1]
    assert "Traceback" not in result.stderr


def test_usage_mistakes_exit_2(run):
    assert run("protocol", "validate").returncode == 2
    assert run("protocol", "list", "--format", "xml").returncode == 2
    assert run("no-such-command").returncode == 2


def test_debug_flag_shows_the_traceback_for_bug_reports(run):
    result = run("--debug", "protocol", "show", "NO-SUCH-PROTOCOL")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
