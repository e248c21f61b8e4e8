"""Issue 14, items 18-22: liveness and what the user sees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer
from tests.helpers import RSS20, run_cli

# -- 19 ----------------------------------------------------------------------------------


def pressbot(config: Path, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
           "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "PRESSBOT_FEEDS": "", "SLACK_BOT_TOKEN": "",
           "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_poll_releases_its_claims(
    feed_server: FeedServer, tmp_path: Path, signum: signal.Signals
) -> None:
    config = write_config(tmp_path, [{"name": "Slow", "url": feed_server.add("/slow.xml", RSS20, hang=6)},
                                     {"name": "Quick", "url": feed_server.add("/quick.xml", RSS20)}])
    config.write_text(config.read_text().replace('timeout = "2s"', 'timeout = "20s"'))
    assert pressbot(config, tmp_path, "db", "upgrade").wait(60) == 0
    first = pressbot(config, tmp_path, "poll")
    deadline = time.monotonic() + 30
    while feed_server.hits["/slow.xml"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    status = pressbot(config, tmp_path, "status")
    shown, _ = status.communicate(timeout=60)
    first.send_signal(signum)
    first.communicate(timeout=30)

    assert "polled by poll:" in shown, shown  # the claim and its holder, while it runs
    second = pressbot(config, tmp_path, "poll", "--json")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["feeds"], summary["fetched"]) == (2, 2), summary


# -- 18 ----------------------------------------------------------------------------------


def many_releases(count: int) -> str:
    items = "".join(f"<item><title>Release {n}</title><guid>g{n}</guid><description>Text {n}.</description></item>"
                    for n in range(count))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Many</title>{items}</channel></rss>'


@pytest.mark.parametrize("output", ["json", "ndjson", "csv"])
def test_limit_0_exports_the_whole_archive(feed_server: FeedServer, tmp_path: Path, output: str) -> None:
    config = write_config(tmp_path, [{"name": "Many", "url": feed_server.add("/many.xml", many_releases(120))}])
    database_url = f"sqlite:///{tmp_path / 'q.db'}"
    assert run_cli(["poll"], config, database_url).exit_code == 0

    result = run_cli(["query", "--limit", "0", "--format", output], config, database_url)

    assert result.exit_code == 0, result.output
    if output == "json":
        assert len(json.loads(result.stdout)) == 120
    elif output == "ndjson":
        assert len(result.stdout.strip().splitlines()) == 120
    else:
        assert len(result.stdout.strip().splitlines()) == 121  # and the header


# -- 20 ----------------------------------------------------------------------------------

WALLS = {
    "cloudflare": '<html><head><title>Just a moment...</title></head><body><div class="main-wrapper">'
                  "<h1>Just a moment...</h1><p>Please enable JavaScript and cookies to continue.</p><p>rights.example"
                  " needs to review the security of your connection before proceeding. Verifying you are human."
                  "</p></div></body></html>",
    "access-denied": "<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1><p>You don't have "
                     'permission to access "http://rights.example/news/1" on this server.</p><p>Reference '
                     "#18.2f5c1002.1700000000.1a2b3c</p></body></html>",
}
TEASER = ("The Special Rapporteur expressed deep concern about reprisals against defenders in the capital. "
          "Two of them were detained after meeting the delegation.")


@pytest.mark.parametrize("wall", sorted(WALLS), ids=str)
def test_a_bot_wall_page_never_replaces_the_teaser(feed_server: FeedServer, tmp_path: Path, wall: str) -> None:
    from sqlalchemy import create_engine, select

    from bot.schema import Item

    page = feed_server.add("/news/1", WALLS[wall], content_type="text/html")
    feed = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>R</title><item><title>Reprisals</title>'
            f"<link>{page}</link><guid>r1</guid><description>{TEASER}</description></item></channel></rss>")
    config = write_config(tmp_path, [{"name": "R", "url": feed_server.add("/feed.xml", feed)}],
                          extra="[fulltext]\nenabled = true\n")
    database_url = f"sqlite:///{tmp_path / 'w.db'}"

    assert run_cli(["poll"], config, database_url).exit_code == 0

    with create_engine(database_url).connect() as connection:
        row = connection.execute(select(Item)).one()
    assert feed_server.hits["/news/1"] == 1
    assert row.full_text is None and row.full_text_error and "wall" in row.full_text_error
    assert row.summary.startswith("The Special Rapporteur expressed deep concern")


def test_a_page_shorter_than_the_teaser_is_not_the_text(feed_server: FeedServer, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, select

    from bot.schema import Item

    short = "<html><body><article><p>Defenders were detained after the visit.</p></article></body></html>"
    page = feed_server.add("/news/2", short, content_type="text/html")
    feed = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>R</title><item><title>Reprisals</title>'
            f"<link>{page}</link><guid>r2</guid><description>{TEASER}</description></item></channel></rss>")
    config = write_config(tmp_path, [{"name": "R", "url": feed_server.add("/feed.xml", feed)}],
                          extra="[fulltext]\nenabled = true\n")
    database_url = f"sqlite:///{tmp_path / 's.db'}"

    assert run_cli(["poll"], config, database_url).exit_code == 0

    with create_engine(database_url).connect() as connection:
        row = connection.execute(select(Item)).one()
    assert row.summary.startswith("The Special Rapporteur expressed deep concern")


# -- 21 ----------------------------------------------------------------------------------


def run_env(config: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("PRESSBOT_", "SLACK_", "DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY",
                                        "http_proxy", "https_proxy"))}
    return {**inherited, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
            "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **extra}


@pytest.mark.parametrize("token", ["xoxb-123-456-abc", "not-a-token"], ids=["bot-token", "garbage"])
def test_an_app_token_of_the_wrong_kind_is_one_line_at_start(tmp_path: Path, token: str) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])

    done = subprocess.run([sys.executable, "-m", "bot", "run"], env=run_env(config, tmp_path, SLACK_APP_TOKEN=token),
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)

    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "SLACK_APP_TOKEN" in done.stderr, done.stderr
    assert "xoxb-123-456-abc" not in done.stderr  # never echo a secret


def test_socket_mode_is_retried_while_run_lives(tmp_path: Path) -> None:
    from tests.fakesocketmode import FakeSocketModeSlack

    slack = FakeSocketModeSlack().start()
    slack.refuse_opens = 2  # a revoked token, then fixed in the Slack app settings
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    env = run_env(config, tmp_path, SLACK_APP_TOKEN="xapp-1-A111-fake", SLACK_BOT_TOKEN="xoxb-fake",
                  SLACK_API_URL=slack.api_url)
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        slack.wait_for(lambda: len(slack.opened) >= 3 and slack._connections, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
        slack.stop()
    assert "Traceback" not in err, err
    assert "invalid_auth" in err  # each refusal is one clear line


# -- 22 ----------------------------------------------------------------------------------


def test_feeds_list_piped_gives_one_whole_line_per_feed(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    names = ["Office of the High Commissioner for Human Rights", "International Service for Human Rights"]
    config = write_config(tmp_path, [{"name": name, "url": f"https://n{n}.example/feed/really/long/path/rss.xml"}
                                     for n, name in enumerate(names)])
    env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}", "PRESSBOT_FEEDS": "",
           "COLUMNS": "80"}

    assert CliRunner().invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["feeds", "list"], env=env)

    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    for name in names:
        assert sum(name in line for line in lines) == 1, result.stdout
    assert len(lines) <= 1 + len(names), result.stdout


def test_an_empty_feed_list_is_warned_about_and_counts_read_right(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [])
    result = run_cli(["poll"], config, f"sqlite:///{tmp_path / 'e.db'}")
    assert result.exit_code == 0 and "no feeds" in result.stderr, result.output

    config = write_config(tmp_path, [{"name": "One", "url": feed_server.add("/one.xml", RSS20)}])
    result = run_cli(["poll"], config, f"sqlite:///{tmp_path / 'e.db'}")
    assert result.exit_code == 0 and "1 feed:" in result.stdout and "1 feeds" not in result.stdout, result.stdout


def test_prune_suggests_only_spans_it_accepts(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    config = write_config(tmp_path, [])
    result = CliRunner().invoke(cli, ["prune", "--older-than", "1x"],
                                env={"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.exit_code == 2
    assert "90d" in result.stderr and "30s" not in result.stderr and "15m" not in result.stderr, result.stderr


def test_slack_sdk_error_lines_do_not_precede_pressbots_own(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, [])
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "SLACK_BOT_TOKEN": "xoxb-fake", "SLACK_API_URL": f"http://127.0.0.1:{port}/api/", "PYTHONPATH": str(REPO)}

    done = subprocess.run([sys.executable, "-m", "bot", "slack", "test"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)

    assert done.returncode != 0
    assert "slack_sdk" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
