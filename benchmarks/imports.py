"""Which bot modules each module imports, read from the source (issue 13's import graph).

    python benchmarks/imports.py [--stages] [--lines]

One line per module of ``bot/``: the bot modules it imports when it is imported (its
top level, ``if TYPE_CHECKING:`` blocks left out), then, after ``|``, those it imports
inside a function. ``--stages``: only the pipeline's stage modules and the pass.
``--lines``: each module's length (``wc -l``) beside its name. Exits 1 if a module
outside ``bot/cli/`` imports inside a function (the start-up tuning belongs to the CLI).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "bot"
# fetch → parse → full text → store → flag → summarize → deliver, the pass and the scheduler.
STAGES = ("bot.fetch", "bot.parse", "bot.listing", "bot.prepare", "bot.language", "bot.fulltext", "bot.pages",
          "bot.store", "bot.flag", "bot.summarize", "bot.policy", "bot.group", "bot.deliver", "bot.poll",
          "bot.scheduler")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:  # from . import x
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
    # "from bot import fetch" imports the module bot.fetch; "from bot.x import name", bot.x.
    return {base, *(f"{base}.{alias.name}" for alias in node.names)}


def imports_of(path: Path, known: set[str]) -> tuple[set[str], set[str], set[str]]:
    """(at import time, inside functions) — the bot modules ``path`` imports — and every
    module, bot's or not, it imports inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    top: set[str] = set()
    local: set[str] = set()
    anywhere_local: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                (local if in_function else top).update(_imported(child, package) & known)
                if in_function:
                    names = [child.module or "."] if isinstance(child, ast.ImportFrom) else child.names
                    anywhere_local.update(name if isinstance(name, str) else name.name for name in names)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, False)
    skip = {module_name(path), "bot"}  # "from bot import fetch" is bot.fetch's import, not bot's
    return top - skip, local - skip - top, anywhere_local


def short(modules: set[str]) -> str:
    return " ".join(sorted(module.removeprefix("bot.") for module in modules))


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--stages", action="store_true", help="only the stage modules and the pass")
    options.add_argument("--lines", action="store_true", help="each module's length in lines")
    args = options.parse_args()
    paths = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}
    known = set(paths)
    wrong = []
    for name, path in sorted(paths.items()):
        top, local, anywhere_local = imports_of(path, known)
        if anywhere_local and not name.startswith("bot.cli"):
            wrong.append(f"{name} ({' '.join(sorted(anywhere_local))})")
        if args.stages and not any(name == stage or name.startswith(stage + ".") for stage in STAGES):
            continue
        size = f" ({len(path.read_text(encoding='utf-8').splitlines())})" if args.lines else ""
        print(f"{name.removeprefix('bot.')}{size}: {short(top)}" + (f" | {short(local)}" if local else ""))
    if wrong:
        print("function-local imports outside bot/cli/:", *wrong, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
