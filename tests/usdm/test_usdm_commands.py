"""`export usdm` and `protocol from-usdm`, run as the installed command."""

from __future__ import annotations

import json

import pytest

from tests.usdm.conftest import require_usdm4

require_usdm4()


def test_a_protocol_goes_to_usdm_and_back_to_a_protocol_file_that_validates(run, tmp_path):
    done = run("export", "usdm", "TNT-STS", "--out", "tnt.json", check=True)
    assert "usdm4 rules passed" in done.stdout
    done = run("protocol", "from-usdm", "tnt.json", "--out", "tnt.toml", check=True)
    assert "TNT-STS v1.2: 1 arms" in done.stdout
    assert run("protocol", "validate", "tnt.toml").returncode == 0
    original = run("protocol", "show", "TNT-STS", "--format", "json", check=True).stdout
    again = run("protocol", "show", str(tmp_path / "tnt.toml"), "--format", "json").stdout
    assert json.loads(again) == json.loads(original)


def test_a_version_the_file_does_not_have_is_refused(run, tmp_path):
    done = run("export", "usdm", "NATARS", "--version", "9.9", "--out", "n.json")
    assert done.returncode == 1 and not (tmp_path / "n.json").exists()
    assert done.stderr.strip().splitlines() == [
        "error: NATARS is version 1.2, not 9.9 (name a database for stored versions)"
    ]


def _usdm_without_arms(run, tmp_path):
    run("export", "usdm", "NATARS", "--out", "n.json", check=True)
    data = json.loads((tmp_path / "n.json").read_text())
    data["study"]["versions"][0]["studyDesigns"][0]["arms"] = []
    (tmp_path / "bad.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "bad.json: not JSON: Expecting value (line 1)"),
        ('{"study": {"name": "X"}}', "bad.json: usdmVersion: not a USDM v4 study: Field required"),
        (None, "bad.json: study.versions[0].studyDesigns[0].arms: the study design has no arm"),
    ],
    ids=["not-json", "not-usdm", "no-arm"],
)
def test_bad_input_is_one_line_and_writes_nothing(run, tmp_path, content, message):
    if content is None:
        _usdm_without_arms(run, tmp_path)
    else:
        (tmp_path / "bad.json").write_text(content)
    done = run("protocol", "from-usdm", "bad.json", "--out", "out.toml")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.toml").exists()
