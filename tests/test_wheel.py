"""pressbot as a deployer gets it: the lock and the wheel in a fresh venv, run from an empty directory.

One venv for the module: ``pip install -r requirements.txt`` (what a Procfile buildpack
does), then the built wheel without dependencies (so everything else comes from the
lock) and ``pip check``. From an empty directory, with only environment variables,
``pressbot db upgrade``, ``poll --json`` over a local feed and ``query --format json``
must work on SQLite and PostgreSQL with the rules shipped inside the wheel; the
Procfile's commands must work from a copy of the application's files. Slow (a venv
install, about a minute): CI runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.deployfeed import EXPECTED_FLAGS, serve_releases, titles_by_key
from tests.feedserver import FeedServer

pytestmark = pytest.mark.slow


class Venv:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.bin = path / "bin"

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # Only what a deployer sets: no PYTHONPATH, so nothing is imported from the clone.
        base = {key: value for key, value in os.environ.items() if not key.startswith(("PRESSBOT_", "PYTHON"))}
        base.pop("DATABASE_URL", None)
        return subprocess.run(list(args), cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)


def _pip(venv: Venv, *args: str) -> None:
    done = venv.run(str(venv.bin / "pip"), *args, cwd=venv.path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    [built] = out.glob("pressbot-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """A fresh venv with the lock, then the wheel (no dependencies of its own: the lock must have them all)."""
    env = Venv(tmp_path_factory.mktemp("venv") / "venv")
    subprocess.run([sys.executable, "-m", "venv", str(env.path)], check=True, timeout=120)
    _pip(env, "install", "-q", "-r", str(REPO / "requirements.txt"))
    _pip(env, "install", "-q", "--no-deps", str(wheel))
    _pip(env, "check")
    return env


@pytest.fixture
def releases() -> Iterator[str]:
    server = FeedServer().start()
    feeds = serve_releases(server)
    yield feeds
    server.stop()


def feed_list(directory: Path, url: str) -> Path:
    path = directory / "local-feeds.toml"
    path.write_text(f'[[feeds]]\nname = "Releases"\nurl = "{url}"\n', encoding="utf-8")
    return path


def test_the_wheel_carries_the_migrations_and_the_default_configuration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in [*(REPO / "migrations").rglob("*"), *(REPO / "config").rglob("*")]:
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(REPO)
            assert f"bot/_{relative}" in names
    assert not any(name.startswith(("migrations/", "config/")) for name in names)


def run_from_an_empty_directory(venv: Venv, empty: Path, env: dict[str, str]) -> None:
    pressbot = str(venv.bin / "pressbot")
    upgraded = venv.run(pressbot, "db", "upgrade", cwd=empty, env=env)
    assert upgraded.returncode == 0 and upgraded.stderr == "", upgraded.stderr

    polled = venv.run(pressbot, "poll", "--json", cwd=empty, env=env)
    assert polled.returncode == 0, polled.stderr
    summary = json.loads(polled.stdout)
    assert (summary["feeds"], summary["fetched"], summary["new_items"], summary["flagged"]) == (1, 1, 3, 2)

    answered = venv.run(pressbot, "query", "--format", "json", cwd=empty, env=env)
    assert answered.returncode == 0, answered.stderr
    keys = titles_by_key()
    assert {keys[row["title"]]: row["flags"] for row in json.loads(answered.stdout)} == EXPECTED_FLAGS

    status = venv.run(pressbot, "status", "--json", cwd=empty, env=env)
    assert status.returncode == 0, status.stderr
    used = Path(json.loads(status.stdout)["config"])
    assert used.name == "pressbot.toml" and used.is_relative_to(venv.path)  # the copy inside the wheel


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_installed_wheel_runs_from_an_empty_directory(
    venv: Venv, releases: str, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    url = f"sqlite:///{tmp_path / 'pressbot.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    env = {"DATABASE_URL": url, "PRESSBOT_FEEDS": str(feed_list(tmp_path, releases)),
           "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}
    run_from_an_empty_directory(venv, empty, env)
    assert os.listdir(empty) == []  # nothing written where it ran


def test_init_writes_a_copy_that_pressbot_config_then_uses(venv: Venv, releases: str, tmp_path: Path) -> None:
    pressbot = str(venv.bin / "pressbot")
    written = venv.run(pressbot, "init", "mine", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    config, feeds = tmp_path / "mine" / "pressbot.toml", tmp_path / "mine" / "feeds.toml"
    feeds.write_text(f'[[feeds]]\nname = "Mine"\nurl = "{releases}"\n', encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8") + '\n[flags.cricket]\nen = ["cricket"]\n', encoding="utf-8")
    again = venv.run(pressbot, "init", "mine", cwd=tmp_path)
    assert (again.returncode, again.stderr.strip()) == (
        2, f"pressbot: error: {Path('mine') / 'pressbot.toml'} already exists: pressbot init never overwrites "
           "(choose another DIRECTORY)")

    env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'mine.db'}",
           "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}
    polled = venv.run(pressbot, "poll", "--json", cwd=tmp_path / "mine", env=env)
    assert polled.returncode == 0, polled.stderr
    assert json.loads(polled.stdout)["flagged"] == 3  # the copy's own flag rule too
    status = json.loads(venv.run(pressbot, "status", "--json", cwd=tmp_path, env=env).stdout)
    assert (status["config"], status["feeds_file"], [feed["name"] for feed in status["feeds"]]) == (
        str(config), str(feeds), ["Mine"])


def test_the_procfile_runs_on_what_the_lock_installs(venv: Venv, releases: str, tmp_path: Path) -> None:
    """A buildpack installs requirements.txt and runs the Procfile's commands in the application's directory."""
    app = tmp_path / "app"
    app.mkdir()
    for name in ("bot", "config", "migrations"):
        shutil.copytree(REPO / name, app / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Procfile", "requirements.txt", ".python-version", "pyproject.toml"):
        shutil.copy(REPO / name, app / name)
    feed_list(app / "config", releases)
    (app / "config" / "feeds.toml").write_text((app / "config" / "local-feeds.toml").read_text())
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'platform.db'}", "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
           "PATH": f"{venv.bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    processes = dict(line.split(": ", 1) for line in (REPO / "Procfile").read_text().splitlines() if line)
    assert set(processes) == {"release", "worker"}

    released = venv.run("sh", "-c", processes["release"], cwd=app, env=env)
    assert released.returncode == 0, released.stderr
    worker = subprocess.Popen(["sh", "-c", f"exec {processes['worker']}"], cwd=app,
                              env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answered: list[object] = []
        for _ in range(60):
            done = venv.run("sh", "-c", "python -m bot query --format json", cwd=app, env=env)
            answered = json.loads(done.stdout) if done.returncode == 0 else []
            if len(answered) == 3:
                break
            import time

            time.sleep(0.5)
        assert len(answered) == 3
    finally:
        worker.terminate()
        _out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
