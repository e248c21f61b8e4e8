"""``pressbot init``: an editable copy of the configuration that ships in the package."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli import ConfigClickError

CONFIG_FILES = ("pressbot.toml", "feeds.toml")


@click.command()
@click.argument("directory", default="config", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write the default pressbot.toml and feeds.toml into DIRECTORY (default ./config) to edit.

    Never overwrites: if either file is there, nothing is written. ./config/pressbot.toml
    is found without PRESSBOT_CONFIG; elsewhere, point PRESSBOT_CONFIG at the copy.
    """
    from bot.locations import default_config_dir

    targets = [directory / name for name in CONFIG_FILES]
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        raise ConfigClickError(
            f"{existing[0]} already exists: pressbot init never overwrites (choose another DIRECTORY)"
        )
    source = default_config_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, target in zip(CONFIG_FILES, targets, strict=True):
            with target.open("xb") as out:  # "x": a file appearing meanwhile is not overwritten either
                out.write((source / name).read_bytes())
    except OSError as exc:
        raise ConfigClickError(f"{directory}: cannot write: {exc.strerror}") from None
    config = targets[0]
    click.echo(f"wrote {config} and {targets[1]}")
    if config.absolute() != Path("config/pressbot.toml").absolute():
        click.echo(f"use it with PRESSBOT_CONFIG={config.absolute()}")
