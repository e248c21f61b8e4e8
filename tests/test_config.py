"""Settings: environment over TOML, and one clear line (exit 2) for every bad configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load, normalize_database_url, parse_duration
from bot.errors import ConfigError
from tests.conftest import REPO, write_config

GOOD_FEED = {"name": "ISHR", "url": "https://ishr.ch/feed/"}


def env_for(config: Path, **extra: str) -> dict[str, str]:
    return {"PRESSBOT_CONFIG": str(config), **extra}


def test_the_shipped_configuration_loads() -> None:
    settings = load({"PRESSBOT_CONFIG": str(REPO / "config" / "pressbot.toml")})

    names = {feed.name for feed in settings.feeds}
    assert {"UN News", "ICC", "Human Rights Watch", "Amnesty International", "ISHR", "ICJ", "ACLU"} <= names
    assert settings.database_url == "sqlite:///pressbot.db"
    assert {"reprisal", "icc"} <= set(settings.flag_rules.names)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, [GOOD_FEED], extra='[slack]\nchannel = "#from-file"\n')

    settings = load(
        env_for(
            config,
            DATABASE_URL="postgres://u:secret@db.example:5432/press",
            SLACK_CHANNEL="#from-env",
            SLACK_BOT_TOKEN="xoxb-1",
        )
    )

    assert settings.database_url == "postgresql+psycopg://u:secret@db.example:5432/press"
    assert settings.slack.channel == "#from-env"
    assert "secret" not in repr(settings) and "xoxb" not in repr(settings)


def test_durations_and_limits_are_parsed_once_into_typed_values(tmp_path: Path) -> None:
    extra = 'interval = "2m"\nmax_redirects = 2\n[alerts]\nwindow = "3d"\n[scheduler]\nlease = 90\n'
    settings = load(env_for(write_config(tmp_path, [GOOD_FEED], extra=extra), PRESSBOT_ALLOW_PRIVATE_NETWORKS="1"))

    assert settings.poll.timeout == timedelta(seconds=2) and settings.alerts.window == timedelta(days=3)
    limits = settings.fetch_limits
    assert (limits.max_redirects, limits.timeout_seconds, limits.deadline_seconds, limits.allow_private) == (
        2, 2.0, 6.0, True,
    )
    assert (settings.schedule.default_interval, settings.schedule.lease) == (120.0, 90.0)


@pytest.mark.parametrize(
    ("extra", "key"),
    [('interval = "soon"\n', "poll.interval"), ('[scheduler]\nlease = "5 minutes"\n', "scheduler.lease"),
     ("[alerts]\nwindow = true\n", "alerts.window")],
    ids=["poll", "scheduler", "not-a-string"],
)
def test_a_bad_duration_is_one_line_naming_its_key(tmp_path: Path, extra: str, key: str) -> None:
    config = write_config(tmp_path, [GOOD_FEED], extra=extra)
    with pytest.raises(ConfigError) as error:
        load(env_for(config))
    assert f"pressbot.toml: {key}: " in str(error.value) and "\n" not in str(error.value)


def test_feed_list_can_be_replaced_by_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path, [GOOD_FEED])
    other = tmp_path / "other.toml"
    other.write_text('[[feeds]]\nname = "ICC"\nurl = "https://www.icc-cpi.int/rss.xml"\n', encoding="utf-8")

    settings = load(env_for(config, PRESSBOT_FEEDS=str(other)))

    assert [feed.name for feed in settings.feeds] == ["ICC"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_from_platforms_are_rewritten(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("15m", 900), ("1h", 3600), ("2d", 172800), (30, 30)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


BAD_FEEDS = {
    "broken-toml": ('[[feeds]]\nname = "A"\nurl = "https://a.example/\n', "invalid TOML"),
    "unknown-key": (
        '[[feeds]]\nname = "A"\nurl = "https://a.example/"\ncolour = "red"\n',
        "colour: unknown key",
    ),
    "no-url": ('[[feeds]]\nname = "A"\n', 'feeds[1] (name "A").url: missing'),
    "duplicate": (
        '[[feeds]]\nname = "A"\nurl = "https://a.example/"\n[[feeds]]\nname = "A"\nurl = "https://b.example/"\n',
        'duplicate feed name "A"',
    ),
    "not-http": ('[[feeds]]\nname = "A"\nurl = "ftp://a.example/feed"\n', "is not an http(s) URL"),
    "bad-interval": (
        '[[feeds]]\nname = "A"\nurl = "https://a.example/"\ninterval = "soon"\n',
        "not a duration",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDS), ids=str)
def test_bad_feed_lists_raise_one_line_naming_file_and_key(case: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    text, expected = BAD_FEEDS[case]
    (tmp_path / "feeds.toml").write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load(env_for(config))

    message = str(error.value)
    assert "feeds.toml" in message and expected in message and "\n" not in message


@pytest.mark.parametrize(
    "url", ["notaurl", "slack.example/api/", "http://[::1/api/"], ids=["word", "no-scheme", "bad-ipv6"]
)
def test_a_slack_api_url_that_is_no_http_url_is_a_config_error(tmp_path: Path, url: str) -> None:
    # Found only at the first post otherwise: a ValueError traceback from urllib.
    config = write_config(tmp_path, [GOOD_FEED])
    with pytest.raises(ConfigError, match=r"SLACK_API_URL: .* is not an http\(s\) URL"):
        load(env_for(config, SLACK_API_URL=url))


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, [GOOD_FEED], extra="[poll]\nspeed = 3\n")
    with pytest.raises(ConfigError, match=r"pressbot.toml: .*"):
        load(env_for(config))
    config.write_text('feeds = "feeds.toml"\n[poll]\nspeed = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pressbot\.toml: poll\.speed: unknown key"):
        load(env_for(config))


@pytest.mark.parametrize("case", ["broken-toml", "no-url", "not-http"])
def test_cli_exits_2_with_one_line_and_no_traceback(case: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    (tmp_path / "feeds.toml").write_text(BAD_FEEDS[case][0], encoding="utf-8")
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}

    result = subprocess.run(
        [sys.executable, "-m", "bot", "poll"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "feeds.toml" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing touched before the configuration is valid


@pytest.mark.parametrize(
    ("url", "code"),
    [("garbage", 2), ("mysql://u@h/db", 2), ("postgresql://postgres@127.0.0.1:1/nothing", 1)],
    ids=["unparsable", "no-driver", "unreachable"],
)
def test_a_database_that_cannot_be_used_gives_one_line(url: str, code: int, tmp_path: Path) -> None:
    config = write_config(tmp_path, [GOOD_FEED])
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": url}

    result = subprocess.run(
        [sys.executable, "-m", "bot", "status"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert result.returncode == code
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("pressbot: error:")


PAGE = {"name": "OHCHR", "url": "https://www.ohchr.org/en/press-releases", "page": True}
BAD_PAGE_SOURCES = {
    "unknown-key": ({**PAGE, "item": "div"}, 'feeds[1] (name "OHCHR").item: unknown key'),
    "bad-selector": ({**PAGE, "items": "div[class="},
                     'feeds[1] (name "OHCHR").items: bad CSS selector \'div[class=\':'),
    "selector-on-a-feed": ({"name": "ISHR", "url": "https://ishr.ch/feed/", "link": "h3 a"},
                           'feeds[1] (name "ISHR").link: only for a listing page (page = true)'),
    "negative-cap": ({**PAGE, "pages_per_pass": -1}, 'feeds[1] (name "OHCHR").pages_per_pass: '),
}


@pytest.mark.parametrize("case", list(BAD_PAGE_SOURCES), ids=list(BAD_PAGE_SOURCES))
def test_a_bad_page_source_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    entry, expected = BAD_PAGE_SOURCES[case]
    config = write_config(tmp_path, [entry])
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}

    result = subprocess.run([sys.executable, "-m", "bot", "feeds", "list"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_a_page_source_loads_with_its_selectors_and_default_cap(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{**PAGE, "items": "div.views-row", "link": "h3 a"}, GOOD_FEED])

    page, feed = load(env_for(config)).feeds

    assert page.listing is not None and (page.listing.items, page.listing.link) == ("div.views-row", "h3 a")
    assert page.listing.pages_per_pass == 20
    assert feed.listing is None


def test_the_shipped_configuration_watches_the_newsrooms_without_a_feed() -> None:
    settings = load({"PRESSBOT_CONFIG": str(REPO / "config" / "pressbot.toml")})

    pages = {feed.name: feed.url for feed in settings.feeds if feed.listing is not None}
    assert pages == {
        "OHCHR press releases": "https://www.ohchr.org/en/press-releases",
        "Coalition for the ICC news": "https://www.coalitionfortheicc.org/news",
        "OMCT statements": "https://www.omct.org/en/resources/statements",
    }
    shipped = (REPO / "config" / "feeds.toml").read_text(encoding="utf-8")
    for name in pages:
        assert f'name = "{name}"' in shipped and "# confidence:" in shipped.split(f'name = "{name}"')[1].splitlines()[0]
