"""Which configuration a command uses: PRESSBOT_CONFIG, else ./config/pressbot.toml, else the shipped one.

``pressbot status`` (and ``--json``) names the files it used; ``pressbot init`` writes
an editable copy and never overwrites. The wheel's own copy is checked in
tests/test_wheel.py; here the package runs from the clone, whose ``config/`` is the
shipped default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.locations import default_config_dir
from tests.conftest import REPO, write_config


def status(cwd: Path, **env: str) -> tuple[dict[str, object], str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("PRESSBOT_", "DATABASE_URL"))}
    full = {**base, "PYTHONPATH": str(REPO), "DATABASE_URL": f"sqlite:///{cwd / 'p.db'}", "COLUMNS": "300", **env}
    upgraded = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=cwd, env=full, capture_output=True,
                              text=True, timeout=60, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    results = [subprocess.run([sys.executable, "-m", "bot", "status", *args], cwd=cwd, env=full, capture_output=True,
                              text=True, timeout=60, check=False) for args in (["--json"], [])]
    for result in results:
        assert result.returncode == 0, result.stderr
    return json.loads(results[0].stdout), results[1].stdout


@pytest.mark.parametrize("where", ["env", "local", "packaged"])
def test_status_names_the_configuration_it_found(tmp_path: Path, where: str) -> None:
    if where == "env":
        (tmp_path / "elsewhere").mkdir()
        config = write_config(tmp_path / "elsewhere", [{"name": "A", "url": "https://a.example/feed"}])
        found, table = status(tmp_path, PRESSBOT_CONFIG=str(config))
    elif where == "local":
        (tmp_path / "config").mkdir()
        config = write_config(tmp_path / "config", [{"name": "A", "url": "https://a.example/feed"}])
        found, table = status(tmp_path)
    else:
        config = default_config_dir() / "pressbot.toml"
        found, table = status(tmp_path)
    assert found["config"] == str(config.absolute())
    assert found["feeds_file"] == str(config.parent.absolute() / "feeds.toml")  # relative to the config file
    assert f"Configuration: {config.absolute()} (feeds: {config.parent.absolute() / 'feeds.toml'})" in table


def test_the_shipped_default_is_the_repository_config_in_a_clone() -> None:
    assert default_config_dir() == REPO / "config"


def test_init_writes_the_shipped_files_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(cli, ["init"])
    assert first.exit_code == 0, first.output
    assert first.stdout == f"wrote {Path('config/pressbot.toml')} and {Path('config/feeds.toml')}\n"
    for name in ("pressbot.toml", "feeds.toml"):
        assert (tmp_path / "config" / name).read_bytes() == (REPO / "config" / name).read_bytes()
    (tmp_path / "config" / "feeds.toml").write_text("# mine\n", encoding="utf-8")
    again = CliRunner().invoke(cli, ["init"])
    assert again.exit_code == 2
    assert again.stderr == ("pressbot: error: config/pressbot.toml already exists: pressbot init never "
                            "overwrites (choose another DIRECTORY)\n")
    assert (tmp_path / "config" / "feeds.toml").read_text(encoding="utf-8") == "# mine\n"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "feeds.toml").write_text("# theirs\n", encoding="utf-8")
    partial = CliRunner().invoke(cli, ["init", "other"])
    assert partial.exit_code == 2 and "other/feeds.toml already exists" in partial.stderr
    assert not (tmp_path / "other" / "pressbot.toml").exists()  # nothing written at all
