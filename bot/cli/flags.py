"""``pressbot flags test FILE``: see what the rules in pressbot.toml do before deploying them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bot.cli import ConfigClickError, load_settings


@click.group()
def flags() -> None:
    """The flag rules ([flags.*] in pressbot.toml)."""


@flags.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def test(file: Path, as_json: bool) -> None:
    """Run the rules on a labeled JSON Lines FILE: precision, recall, misclassified items.

    Each line is a release: id, title, summary, content and labels ({"icc": true, …}).
    """
    from bot.flag import evaluate

    settings = load_settings()
    rows = _read_rows(file)
    report = evaluate(settings.flag_rules, rows)
    _refuse_unknown_labels(file, rows, set(report["flags"]))
    if not report["flags"]:
        raise click.UsageError("no flag rules are configured ([flags.*] in pressbot.toml)")
    if all(score["precision"] is None for score in report["flags"].values()):
        names = ", ".join(report["flags"])
        raise click.BadParameter(f"no line labels any of the flags ({names}): nothing to measure", param_hint="FILE")
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(report)


def _refuse_unknown_labels(file: Path, rows: list[dict[str, Any]], flags: set[str]) -> None:
    """A misspelled label ("reprisals") measured nothing, and the report showed the rule perfect."""
    unknown: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        labels = row.get("labels")
        for name in labels if isinstance(labels, dict) else ():
            if name not in flags:
                unknown.setdefault(str(name), number)
    if unknown:
        name, number = next(iter(unknown.items()))
        known = ", ".join(sorted(flags)) or "none"
        raise ConfigClickError(f"{file}: line {number}: label {name!r} is no configured flag (flags: {known})")


def _read_rows(file: Path) -> list[dict[str, Any]]:
    try:
        return _parse_rows(file.read_text(encoding="utf-8-sig").splitlines())
    except UnicodeDecodeError as exc:
        raise ConfigClickError(f"{file}: not UTF-8 text (byte {exc.start + 1}): save it as UTF-8") from None


def _parse_rows(lines: list[str]) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"line {number}: not JSON ({exc.msg})", param_hint="FILE") from None
        if not isinstance(row, dict):
            raise click.BadParameter(f"line {number}: not a JSON object", param_hint="FILE")
        rows.append(row)
    return rows


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, markup=False)  # titles are feed text, not markup
    table = Table("flag", "precision", "recall", "TP", "FP", "FN", "TN", title=f"{report['items']} items")
    for name, score in report["flags"].items():
        table.add_row(name, *_rates(score), *(str(score[key]) for key in ("tp", "fp", "fn", "tn")))
    console.print(table)
    for name, score in report["flags"].items():
        for part, heading in (("by_lang", "language"), ("by_case", "case")):
            if score[part]:
                console.print(*_breakdown(name, score[part], heading))
    unlabeled = [name for name, score in report["flags"].items() if score["precision"] is None]
    if unlabeled:
        console.print(f"not measured (no line labels them): {', '.join(unlabeled)}")
    for name, score in report["flags"].items():
        for item in score["false_positives"]:
            console.print(Text.assemble(("false positive", "bold"), f" {name}: {_describe(item)}"))
            for match in item["matches"]:
                console.print(f"    “{match['phrase']}” ({match['field']}): {match['sentence']}")
        for item in score["false_negatives"]:
            console.print(Text.assemble(("false negative", "bold"), f" {name}: {_describe(item)}"))


def _rates(score: dict[str, Any]) -> tuple[str, str]:
    if score["precision"] is None:
        return "—", "—"
    return f"{score['precision']:.3f}", f"{score['recall']:.3f}"


def _breakdown(flag: str, scores: dict[str, Any], heading: str) -> list[Any]:
    """One flag's scores per language or per case; a case with only true negatives is left out."""
    from rich.table import Table

    shown = {key: score for key, score in scores.items() if heading == "language" or score["tn"] != _total(score)}
    table = Table(heading, "precision", "recall", "TP", "FP", "FN", "TN", title=f"{flag} by {heading}")
    for key, score in shown.items():
        table.add_row(key, *_rates(score), *(str(score[count]) for count in ("tp", "fp", "fn", "tn")))
    hidden = len(scores) - len(shown)
    return [table, f"({hidden} cases with only true negatives for {flag} not shown)"] if hidden else [table]


def _total(score: dict[str, Any]) -> int:
    return int(score["tp"] + score["fp"] + score["fn"] + score["tn"])


def _describe(item: dict[str, Any]) -> str:
    tags = " ".join(f"[{item[key]}]" for key in ("lang", "case") if key in item)
    return f"{item['id']} {item['title']}" + (f" {tags}" if tags else "")
