"""Where the configuration and the database are: the config file, the database URL.

The precedence is the same for every command: ``PRESSBOT_CONFIG``, else
``./config/pressbot.toml``, else the default that ships inside the package;
``DATABASE_URL``, else the file's ``database_url``, else
SQLite beside the working directory. ``config.load()`` builds on this; a one-off
``pressbot query`` needs nothing else (standard library only), so it skips the
validation of everything else.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

DEFAULT_CONFIG = "config/pressbot.toml"
DEFAULT_DATABASE_URL = "sqlite:///pressbot.db"


def default_config_dir() -> Path:
    """The configuration that ships: inside the installed package, else the clone's ``config/``.

    setup.py copies the top-level ``config/`` into the wheel as ``bot/_config``.
    """
    packaged = files("bot") / "_config"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "config"


def config_path(env: Mapping[str, str]) -> Path:
    """``PRESSBOT_CONFIG``, else ``./config/pressbot.toml`` if there is one, else the shipped default."""
    if env.get("PRESSBOT_CONFIG"):
        return Path(env["PRESSBOT_CONFIG"])
    local = Path(DEFAULT_CONFIG)
    if local.is_file():
        return local
    return default_config_dir() / "pressbot.toml"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
        # Windows Notepad starts UTF-8 with a BOM; tomllib reads it as a stray character.
        return tomllib.loads(data.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start + 1}): save it as UTF-8 (UTF-16 and Latin-1 are not read)"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def normalize_database_url(url: str) -> str:
    """Procfile platforms hand out ``postgres://``, which SQLAlchemy 2 no longer accepts."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url(env: Mapping[str, str], file_value: str | None) -> str:
    """``DATABASE_URL``, else the config file's ``database_url``, else the default; normalised."""
    return normalize_database_url(env.get("DATABASE_URL") or file_value or DEFAULT_DATABASE_URL)


def database_url_from_env_and_file(environ: Mapping[str, str] | None = None) -> str:
    """The database URL, reading the config file only when ``DATABASE_URL`` is unset.

    A missing config file is fine when ``DATABASE_URL`` is set: a query needs nothing
    else from it.
    """
    env = os.environ if environ is None else environ
    if env.get("DATABASE_URL"):
        return database_url(env, None)
    path = config_path(env)
    value = read_toml(path).get("database_url")
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: database_url: must be a string")
    return database_url(env, value)
