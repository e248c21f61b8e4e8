"""The README documents every setting, environment variable and command."""

from __future__ import annotations

from pydantic import BaseModel

from bot.cli import COMMANDS
from bot.config import ENV_VARIABLES, ConfigFile
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def setting_keys() -> list[str]:
    keys = []
    for name, field in ConfigFile.model_fields.items():
        section = field.default
        if isinstance(section, BaseModel):
            keys += [f"{name}.{key}" for key in type(section).model_fields]
        else:
            keys.append(name)
    return keys


def test_every_setting_is_in_the_readme() -> None:
    missing = [key for key in setting_keys() if f"`{key}`" not in README and f"{key}`" not in README]
    assert missing == []


def test_every_environment_variable_is_in_the_readme() -> None:
    assert [name for name in ENV_VARIABLES if f"`{name}`" not in README] == []


def test_every_command_is_in_the_readme() -> None:
    assert [name for name in COMMANDS if f"pressbot {name}" not in README] == []


def test_every_feed_key_is_in_the_readme() -> None:
    from bot.config import FeedEntry

    assert [key for key in FeedEntry.model_fields if f"`{key}`" not in README and f"{key} = " not in README] == []


def test_every_feeds_subcommand_is_in_the_readme() -> None:
    from bot.cli.feeds import feeds

    assert [name for name in feeds.commands if f"pressbot feeds {name}" not in README
            and not any(name in line for line in README.splitlines() if "pressbot feeds " in line)] == []


def test_the_readme_shows_the_procfile_as_it_is() -> None:
    procfile = (REPO / "Procfile").read_text(encoding="utf-8")
    assert f"The `Procfile`:\n\n```\n{procfile}```" in README


FIRST_SCREEN = (
    'python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/pressbot poll',
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]" && .venv/bin/python -m pytest',
)


def test_the_first_screen_has_the_two_commands_and_ci_runs_the_second_verbatim() -> None:
    first_block = README[README.index("```sh\n") + 6:]
    first_block = first_block[: first_block.index("```")]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert tuple(commands) == FIRST_SCREEN
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().splitlines()[-1] == FIRST_SCREEN[1]
