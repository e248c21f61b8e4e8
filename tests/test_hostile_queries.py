"""Issue 14, items 13-17: queries and configurations a careless or hostile user writes."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import cli
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import RSS20, run_cli


def one_line_exit_2(result: Any) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def stored(feed_server: FeedServer, tmp_path: Path, database_url: str) -> tuple[Path, str]:
    config = write_config(tmp_path, [{"name": "Rights", "url": feed_server.add("/feed.xml", RSS20), "tags": ["ngo"]}])
    assert run_cli(["poll"], config, database_url).exit_code == 0
    return config, database_url


def query(stored: tuple[Path, str], *args: str) -> Any:
    config, database_url = stored
    return run_cli(["query", *args], config, database_url)


# -- 13 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [" ".join(["reprisals"] * 86), " OR ".join(["reprisals"] * 86), " ".join(f"-w{n}" for n in range(80)) + " court"],
    ids=["86-words", "86-ors", "80-exclusions"],
)
def test_a_long_query_within_the_documented_length_works(stored: tuple[Path, str], text: str) -> None:
    result = query(stored, *text.split(" "), "--format", "json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), list)


@pytest.mark.parametrize(
    "text", ["(" * 245 + "court" + ")" * 245, " ".join(["court"] * 400)], ids=["245-parentheses", "over-length"]
)
def test_a_query_beyond_the_documented_limits_is_one_line_exit_2(stored: tuple[Path, str], text: str) -> None:
    result = query(stored, text)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_slash_command_with_deep_nesting_names_the_limit() -> None:
    from bot.errors import QuerySyntaxError
    from bot.store.search import parse_search

    with pytest.raises(QuerySyntaxError, match="nest"):
        parse_search("(" * 245 + "court" + ")" * 245)


# -- 14 ----------------------------------------------------------------------------------

BAD_SETTINGS = {
    "negative-timeout": "[poll]\ntimeout = -1\n",
    "negative-interval": "[poll]\ninterval = -1\n",
    "negative-lease": "[scheduler]\nlease = -1\n",
    "ten-thousand-years": '[poll]\ninterval = "10000y"\n',
    "inf": "[poll]\ntimeout = inf\n",
    "nan": "[poll]\ntimeout = nan\n",
    "huge": "[poll]\ntimeout = 1e308\n",
    "negative-window": "[alerts]\nwindow = -1\n",
    "zero-timeout": "[poll]\ntimeout = 0\n",
}


def run_poll(config: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                   "PRESSBOT_FEEDS": "", **env}
    return subprocess.run([sys.executable, "-m", "bot", "poll", "--dry-run"], env=environment, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS), ids=str)
def test_a_nonsensical_duration_is_refused_by_config(case: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    text = config.read_text()
    section, line = BAD_SETTINGS[case].split("\n", 1)
    config.write_text(text.replace(section + "\n", section + "\n" + line, 1) if section in text
                      else BAD_SETTINGS[case] + text)

    result = run_poll(config, tmp_path)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "pressbot.toml" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "feed", [{"name": "N" * 201}, {"name": "A", "channel": "#" + "c" * 200}, {"name": "A\u0000B"}],
    ids=["long-name", "long-channel", "nul-in-name"],
)
def test_a_feed_name_or_channel_the_database_cannot_hold_is_refused(feed: dict[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    lines = ["[[feeds]]", 'url = "https://a.example/feed"'] + [f"{k} = {json.dumps(v)}" for k, v in feed.items()]
    (tmp_path / "feeds.toml").write_text("\n".join(lines) + "\n")

    result = run_poll(config, tmp_path)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "feeds.toml" in result.stderr, result.stderr


def test_a_slack_channel_or_flag_name_the_database_cannot_hold_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    result = run_poll(config, tmp_path, SLACK_CHANNEL="#" + "c" * 200)
    assert result.returncode == 2 and "SLACK_CHANNEL" in result.stderr, result.stderr

    config.write_text(config.read_text() + f'\n[flags.{"f" * 101}]\nphrases = ["x"]\n')
    result = run_poll(config, tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- 15 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["config", "feeds"])
def test_a_utf8_bom_is_accepted(which: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    path = config if which == "config" else tmp_path / "feeds.toml"
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "PRESSBOT_FEEDS": ""}

    result = CliRunner().invoke(cli, ["feeds", "export"], env=env)

    assert result.exit_code == 0, result.output
    assert "https://a.example/feed" in result.stdout


@pytest.mark.parametrize(
    ("which", "encoding"), [("config", "utf-16"), ("feeds", "utf-16"), ("feeds", "latin-1")],
    ids=["config-utf16", "feeds-utf16", "feeds-latin1"],
)
def test_a_file_not_in_utf8_is_one_line_naming_it(which: str, encoding: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    path = config if which == "config" else tmp_path / "feeds.toml"
    path.write_bytes(("# Flux de presse : été\n" + path.read_text()).encode(encoding))

    result = run_poll(config, tmp_path)

    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and path.name in line and "UTF-8" in line, result.stderr


# -- 16 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["--flag", "reprisals"], ["--tag", "nope"], ["--lang", "french"], ["--lang", "de"],
     ["--since", "2026-05-01", "--until", "2026-04-01"]],
    ids=["misspelled-flag", "unknown-tag", "language-name", "language-not-stored", "empty-range"],
)
def test_a_filter_that_can_match_nothing_is_one_line_exit_2(stored: tuple[Path, str], args: list[str]) -> None:
    result = query(stored, *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output, result.stderr


def test_known_filters_still_answer_in_any_case(stored: tuple[Path, str]) -> None:
    # "--flag ICC" answered nothing: flags are matched in any case, as feeds are.
    result = query(stored, "--flag", "ICC", "--tag", "NGO", "--lang", "EN", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [hit["title"] for hit in json.loads(result.stdout)] == ["Court issues arrest warrant"]


@pytest.mark.parametrize("args", [["query", "-h"], ["feeds", "list", "-h"], ["alerts", "-h"], ["prune", "-h"]])
def test_dash_h_is_help_everywhere(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage:" in result.output, result.output


# -- 17 ----------------------------------------------------------------------------------


def test_flags_test_refuses_a_label_no_rule_has(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    labeled = tmp_path / "labeled.jsonl"
    rows = [{"id": "1", "title": "Reprisals against defenders", "labels": {"reprisals": True}},
            {"id": "2", "title": "Weather report", "labels": {"reprisals": False}}]
    labeled.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    result = CliRunner().invoke(cli, ["flags", "test", str(labeled)], env={"PRESSBOT_CONFIG": str(config),
                                                                         "PRESSBOT_FEEDS": ""})

    assert result.exit_code == 2, result.output
    assert "reprisals" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
