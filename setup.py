"""Build hook: the wheel carries ``migrations/`` and ``config/`` as ``bot/_migrations`` and ``bot/_config``.

The top-level directories stay the one source (a clone runs from them); a build copies
them into the package so that an installed pressbot finds its schema and its default
configuration wherever it runs (issue 12). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# top-level source directory -> directory inside the installed package
PACKAGED_DATA = {"migrations": "bot/_migrations", "config": "bot/_config"}


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the clone's own directories
            return
        for source, target in PACKAGED_DATA.items():
            destination = Path(self.build_lib) / target
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))


setup(cmdclass={"build_py": BuildWithData})
