"""The codebase's layout rules, read from the source (STYLE §1, issue 13)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_only_the_cli_imports_inside_a_function() -> None:
    # Start-up tuning lives in bot/cli/ alone: the stages import their libraries at their
    # top, and the entry points decide what a process loads (bot.cli.stages, bot.cli.read_opml).
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "imports.py")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
