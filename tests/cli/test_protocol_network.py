"""``protocol validate`` refuses an arm whose rules cannot all hold, in one line (issue 22)."""

from __future__ import annotations

import subprocess

from tests.unit.test_temporal_network import SURGERY, _natars


def test_the_command_refuses_it_in_one_line(tmp_path, command):
    path = tmp_path / "natars-amended.toml"
    path.write_text(
        _natars(
            SURGERY.replace(
                "offset = 35, earliest = 28, latest = 56", "offset = 24, earliest = 24, latest = 26"
            )
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [command, "protocol", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "ifosfamide_washout" not in done.stderr  # 21 days after C3D5 fits +24 … +26
    assert "anlotinib_washout" in done.stderr and "surgery window" in done.stderr


def test_validate_lists_what_the_holiday_seasons_leave_unless_told_not_to(command):
    from sarcoma_sched.protocol.loader import bundled_protocol_dir

    path = str(bundled_protocol_dir() / "tnt-sts.toml")
    done = subprocess.run(
        [command, "protocol", "validate", path], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"ok  {path}  TNT-STS")
    assert any(line.startswith("    season: TNT rt: unsatisfiable") for line in lines[1:])
    quiet = subprocess.run(
        [command, "protocol", "validate", "--no-seasons", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert quiet.returncode == 0 and quiet.stdout.splitlines() == lines[:1]
