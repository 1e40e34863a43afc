import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def command() -> str:
    """The installed console script of the environment running the tests."""
    found = shutil.which("sarcoma-sched", path=str(Path(sys.executable).parent))
    assert found, "sarcoma-sched is not installed in this environment (pip install -e .)"
    return found


@pytest.fixture
def run(command, tmp_path):
    def _run(*args: str, check: bool | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SARCOMA_SCHED_DEBUG", "SARCOMA_SCHED_DB", "SARCOMA_SCHED_USER")
        }
        # The default database lives under XDG_DATA_HOME: keep it inside the test's directory.
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
        result = subprocess.run(
            [command, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
        )
        if check is True:
            assert result.returncode == 0, result.stderr
        return result

    return _run
