"""Flag rules: the dev set, hard negatives, three languages, explanations, bad rules, speed harness."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli.flags import flags
from bot.config import load
from bot.errors import ConfigError
from bot.flag import FlagRules, compile_rules, evaluate, fold_text, match_flags
from tests.conftest import REPO, SHARED, write_config

CONFIG = REPO / "config" / "pressbot.toml"
DEV = REPO / "tests" / "data" / "labeled-dev.jsonl"
DEV_ROWS: list[dict[str, Any]] = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
GOOD_FEED = {"name": "ISHR", "url": "https://ishr.ch/feed/"}


@pytest.fixture(scope="module")
def rules() -> FlagRules:
    with CONFIG.open("rb") as fh:
        return compile_rules(tomllib.load(fh)["flags"], source=str(CONFIG))


@pytest.fixture(scope="module")
def dev_report(rules: FlagRules) -> dict[str, Any]:
    return evaluate(rules, DEV_ROWS)


def flags_of(
    rules: FlagRules, title: str = "", teaser: str = "", content: str = "", full_text: str | None = None
) -> set[str]:
    return {m.flag for m in match_flags(rules, title=title, teaser=teaser, content=content, full_text=full_text)}


# ---------------------------------------------------------------- the labeled dev set


@pytest.mark.parametrize("flag", ["reprisal", "icc"])
def test_dev_set_precision_and_recall_are_at_least_95_percent(dev_report: dict[str, Any], flag: str) -> None:
    score = dev_report["flags"][flag]

    assert score["tp"] + score["fp"] + score["fn"] + score["tn"] == len(DEV_ROWS)
    misclassified = score["false_positives"] + score["false_negatives"]
    assert score["precision"] >= 0.95, misclassified
    assert score["recall"] >= 0.95, misclassified


def test_the_poll_loads_the_same_rules_through_the_settings(tmp_path: Path, dev_report: dict[str, Any]) -> None:
    settings = load({"PRESSBOT_CONFIG": str(write_config(tmp_path, [GOOD_FEED]))})

    report = evaluate(settings.flag_rules, DEV_ROWS)

    counts = ("tp", "fp", "fn", "tn")
    assert {f: [s[c] for c in counts] for f, s in report["flags"].items()} == {
        f: [s[c] for c in counts] for f, s in dev_report["flags"].items()
    }


def seed_files() -> list[Path]:
    return sorted((SHARED / "corpus" / "seeds").glob("*.txt"))


def test_both_seed_releases_are_flagged_reprisal_and_icc(rules: FlagRules) -> None:
    if len(seed_files()) < 2:
        pytest.skip("../shared/corpus/seeds is not here")
    for seed in seed_files():
        lines = [line.strip() for line in seed.read_text(encoding="utf-8").splitlines() if line.strip()]
        title, paragraphs = lines[0], lines[1:]

        assert flags_of(rules, title=title, content="\n\n".join(paragraphs)) == {"reprisal", "icc"}, seed.name


HARD_NEGATIVES = ("neg-cricket", "neg-chamber-of-commerce", "neg-code-council", "neg-unicc", "neg-icj")


@pytest.mark.parametrize(
    "row",
    [row for row in DEV_ROWS if row["case"].startswith(HARD_NEGATIVES)],
    ids=lambda row: f"{row['case']}:{row['id']}",
)
def test_bodies_named_icc_that_are_not_the_court_are_not_flagged_icc(rules: FlagRules, row: dict[str, Any]) -> None:
    assert "icc" not in flags_of(rules, row["title"], row["summary"], row["content"])


def test_every_kind_of_hard_negative_is_in_the_dev_set() -> None:
    cases = {row["case"] for row in DEV_ROWS}
    assert all(any(case.startswith(kind) for case in cases) for kind in HARD_NEGATIVES)


# ---------------------------------------------------------------- French and Spanish

FRENCH = (
    "Marénie : une avocate poursuivie pour avoir coopéré avec le Comité des droits de l’homme",
    "L’Observatoire dénonce les poursuites contre Me Leila Haddad.",
    "Me Haddad représente des victimes devant la Cour pénale internationale. Selon l’Observatoire, "
    "ces poursuites visent à la sanctionner pour sa coopération avec les Nations unies.",
)
SPANISH = (
    "Testigos de la CPI denuncian represalias en Calderra",
    "Organizaciones documentaron amenazas contra personas que hablaron con investigadores de la Fiscalía de la CPI.",
    "",
)


def test_a_french_release_is_flagged_reprisal_and_icc(rules: FlagRules) -> None:
    assert flags_of(rules, *FRENCH) == {"reprisal", "icc"}


def test_a_spanish_release_is_flagged_reprisal_and_icc(rules: FlagRules) -> None:
    assert flags_of(rules, *SPANISH) == {"reprisal", "icc"}


@pytest.mark.parametrize(
    ("title", "teaser"),
    [
        ("Reprise des pourparlers de paix à Genève", "L’ONU salue la reprise du dialogue."),
        ("La Cour internationale d’arbitrage de la CCI publie ses statistiques", "Arbitrage commercial."),
        ("Sequía: las represas del norte al 20 %", "La represa de Valdoria está casi vacía."),
        (
            "La Corte Internacional de Justicia (CIJ) celebra audiencias en La Haya",
            "Los jueces escucharán a las partes.",
        ),
        ("Medidas de retaliación comercial amenazan las exportaciones", "La OMC analiza los aranceles."),
    ],
    ids=["fr-reprise", "fr-chamber-of-commerce", "es-represa", "es-icj", "es-trade-retaliation"],
)
def test_french_and_spanish_look_alikes_flag_nothing(rules: FlagRules, title: str, teaser: str) -> None:
    assert flags_of(rules, title, teaser) == set()


# ---------------------------------------------------------------- releases the rules were not written on

REPRISAL, ICC = "reprisal", "icc"


@pytest.mark.parametrize(
    ("title", "teaser", "expected"),
    [
        ("Journalist jailed for speaking to UN investigators", "", {REPRISAL}),
        ("Lawyer disbarred for having testified before the Human Rights Committee", "", {REPRISAL}),
        ("Lawyer stripped of licence for representing victims before the UN Committee against Torture", "", {REPRISAL}),
        (
            "Activists detained",
            "Their lawyers call it retaliation for meeting the visiting Special Rapporteur.",
            {REPRISAL},
        ),
        ("Travel bans on activists", "The bans appear designed to punish them for engaging with the UPR.", {REPRISAL}),
        ("Intimidation of those cooperating with the United Nations must stop", "", {REPRISAL}),
        ("Zembara : un avocat condamné pour avoir témoigné devant le Comité de l’ONU", "", {REPRISAL}),
        ("Detienen a activista por haber declarado ante el Consejo de Derechos Humanos", "", {REPRISAL}),
        ("Calderra: defensora detenida tras reunirse con el Relator Especial de la ONU", "", {REPRISAL}),
        ("Army carries out reprisal raids on villages", "", {REPRISAL}),
        ("US imposes sanctions on ICC officials", "", {ICC}),
        ("Hungary announces withdrawal from the ICC", "", {ICC}),
        ("THE ICC AT 25", "The court in The Hague has opened investigations in 17 situations.", {ICC}),
        (
            "Security Council briefed on threats to civilians",
            "Members urged States to cooperate with the mission.",
            set(),
        ),
        ("Committee urges States to cooperate with mechanisms and punish torture", "", set()),
        ("UN expert thanks Government for its cooperation", "She raised the detention of journalists.", set()),
        ("Dozens imprisoned for their participation in the protests", "", set()),
        ("Journalist sentenced for speaking to foreign media", "", set()),
        ("UN rights chief warns against retaliation after missile strikes", "", set()),
        ("Whistleblower law bans retaliation by employers against employees", "", set()),
        ("Witness intimidation delays gang trial", "Witnesses were intimidated before they could testify.", set()),
        ("ICC Arbitration: record caseload", "The ICC International Court of Arbitration met in The Hague.", set()),
        ("ICJ hearings in Valdoria v. Eastmark", "The International Court of Justice heard the parties.", set()),
        ("US CPI rises 3%", "The consumer price index rose as the fiscal year closed.", set()),
        ("GANHRI: ICC accreditation review", "The ICC Sub-Committee on Accreditation reviewed 12 NHRIs.", set()),
        ("ICC fines player for slow over rate", "The ICC said the team was fined.", set()),
    ],
)
def test_unseen_releases(rules: FlagRules, title: str, teaser: str, expected: set[str]) -> None:
    assert flags_of(rules, title, teaser) == expected


# Phrasings a held-out set of releases (written before reading the rules) showed missing:
# relative clauses, regional mechanisms, "rétorsion" aimed at defenders, and victims' own
# accounts that must not pass for retaliation.
@pytest.mark.parametrize(
    ("title", "teaser", "expected"),
    [
        ("Activists barred from travel after attending the UPR in Geneva", "", {REPRISAL}),
        ("Threats against Indigenous leaders who petitioned the Inter-American Commission", "", {REPRISAL}),
        ("Rights activist charged", "The charges appear designed to punish him for his advocacy abroad.", {REPRISAL}),
        ("Relatives of exiled activist arrested", "They aim to punish her for documenting executions.", {REPRISAL}),
        ("Niger : rétorsion contre des défenseurs ayant témoigné devant la Commission africaine", "", {REPRISAL}),
        ("Nicaragua: prohibición de ingreso a activistas que participaron en el EPU", "", {REPRISAL}),
        ("Amenazas a peticionarios ante la CIDH en retaliación por su denuncia", "", {REPRISAL}),
        ("Witness protection at the ICC", "", {ICC}),
        ("Sanciones contra funcionarios de la CPI", "", {ICC}),
        ("Survivors who testified before the commission of inquiry described being tortured in detention", "", set()),
        ("Women who spoke with the Working Group said they had been detained for months", "", set()),
        ("Protesters arrested for their activism in the student movement", "", set()),
        ("Bruxelles prépare des mesures de rétorsion commerciale", "Des droits de douane sur l’acier.", set()),
        (
            "La CPI del Senado aprueba su informe final",
            "La comisión parlamentaria de investigación (CPI) pide a la Fiscalía acusar a 16 personas.",
            set(),
        ),
    ],
)
def test_held_out_phrasings(rules: FlagRules, title: str, teaser: str, expected: set[str]) -> None:
    assert flags_of(rules, title, teaser) == expected


# ---------------------------------------------------------------- how phrases match


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Statement by the International\u00a0Criminal\u00a0Court on its budget", {"icc"}),
        ("Statement by the International Criminal\nCourt on its budget", {"icc"}),
        ("The ICC’s Prosecutor opens an investigation", {"icc"}),
        ("The I.C.C. prosecutor opens an investigation", {"icc"}),
        ("#ICC: judges confirm the charges", {"icc"}),
        ("ICC JUDGES ISSUE ARREST WARRANT", {"icc"}),
        ("Situation ICC-01/25 assigned to a chamber", {"icc"}),
        ("UNICC opens a data centre for the Prosecutor’s office", set()),
        ("ICC Men’s T20 World Cup: judges of the third umpire review", set()),
        ("#NoReprisals: civil society statement", {"reprisal"}),
        ("DEFENDERS FACE REPRISALS AFTER UN VISIT", {"reprisal"}),
        ("Goodwill Ambassador reprises stage role for refugees", set()),
        ("Retaliatory tariffs could slow global growth, UN economists warn", set()),
    ],
)
def test_phrases_ignore_case_accents_spacing_and_typography_but_not_word_boundaries(
    rules: FlagRules, title: str, expected: set[str]
) -> None:
    assert flags_of(rules, title) == expected


@settings(max_examples=80, deadline=None)
@given(row=st.sampled_from(DEV_ROWS), change=st.sampled_from([str.upper, str.lower, str.title, str.swapcase]))
def test_flags_ignore_the_case_of_the_title(rules: FlagRules, row: dict[str, Any], change: Any) -> None:
    as_written = flags_of(rules, row["title"], row["summary"], row["content"])
    assert flags_of(rules, change(row["title"]), row["summary"], row["content"]) == as_written


# ---------------------------------------------------------------- explanations


def test_a_match_keeps_the_phrase_as_written_its_sentence_and_its_field(rules: FlagRules) -> None:
    matches = match_flags(
        rules,
        title="Statement on the situation in Valdoria",
        teaser="Civil society groups met on Monday.",
        content="The meeting was long. Judges at the ICC’s Pre-Trial Chamber issued a warrant.\n\nNo more.",
    )

    [match] = matches
    assert (match.flag, match.phrase, match.field) == ("icc", "ICC", "content")
    assert match.sentence == "Judges at the ICC’s Pre-Trial Chamber issued a warrant."


def test_a_decomposed_accent_still_matches(rules: FlagRules) -> None:
    [match] = match_flags(rules, title="La Cour pe\u0301nale internationale ouvre une enquête", teaser="", content="")
    assert (match.flag, match.phrase) == ("icc", "Cour pénale internationale")


def test_an_anchor_inside_a_longer_one_is_found(rules: FlagRules) -> None:
    # "la fiscal" is an anchor of the Spanish court words; "fiscalía" starts inside it.
    assert flags_of(rules, "Pruebas enviadas a la Fiscalía de la CPI") == {"icc"}


def test_a_long_sentence_is_cut_around_the_phrase(rules: FlagRules) -> None:
    padding = " ".join(["the delegation discussed budget lines"] * 30)
    [match] = match_flags(rules, title="", teaser="", content=f"{padding} and reprisals against defenders {padding}.")

    assert len(match.sentence) <= 320 and "reprisals" in match.sentence
    assert match.sentence.startswith("… ") and match.sentence.endswith(" …")


def test_a_flag_keeps_at_most_three_matches_of_different_phrases(rules: FlagRules) -> None:
    content = " ".join(
        f"Reprisals number {n} against defenders. Represalias {n}. Représailles {n}. Reprisal {n}." for n in range(5)
    )
    matches = match_flags(rules, title="", teaser="", content=content)

    assert len(matches) == 3
    assert len({m.phrase.lower() for m in matches}) == 3


def test_full_text_is_matched_and_named(rules: FlagRules) -> None:
    [match] = match_flags(rules, title="News", teaser="", content="", full_text="ICC judges met in The Hague.")
    assert match.field == "full_text"


# ---------------------------------------------------------------- rules are data

DEATH_PENALTY = {
    "death-penalty": {
        "channel": "#death-penalty",
        "groups": {"penalty": ["death penalty", "capital punishment", "peine de mort", "pena de muerte"]},
        "en": ["{penalty}", "death sentence*", "executions"],
        "rules": [
            {
                "note": "hanged only when it is an execution",
                "en": ["hanged"],
                "near": {"within": 8, "en": ["prison*", "sentenc*"]},
                "unless": {"within": "sentence", "en": ["gallery", "painting*"]},
            },
            {"any": ["re:art\\. 6 iccpr"]},
        ],
    }
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zembara: moratorium on the Death Penalty extended", True),
        ("La peine de mort abolie au Norvaly", True),
        ("Two men were hanged in Karvistan prison at dawn", True),
        ("The portrait was hanged in the prison gallery", False),
        ("Breach of art. 6 ICCPR found", True),
        ("Penalty shoot-out decides the cup final", False),
    ],
)
def test_a_new_flag_needs_only_configuration(text: str, expected: bool) -> None:
    rules = compile_rules(DEATH_PENALTY, source="pressbot.toml")

    assert rules.names == ("death-penalty",)
    assert rules.channel_for("death-penalty") == "#death-penalty"
    assert (flags_of(rules, text) == {"death-penalty"}) is expected


def test_a_flag_without_channel_has_none(rules: FlagRules) -> None:
    assert rules.channel_for("icc") is None and rules.channel_for("unknown") is None


@pytest.mark.parametrize(
    ("raw", "flag", "problem"),
    [
        ({"icc": {"en": ["re:(unclosed"]}}, "icc", "bad regex"),
        ({"icc": {"xx": ["ICC"]}}, "icc", "unknown key or language"),
        ({"icc": {"en": []}}, "icc", "empty phrase list"),
        ({"icc": {}}, "icc", "empty phrase list"),
        ({"icc": {"rules": [{"any": ["ICC"], "nearby": {"en": ["judge"]}}]}}, "icc", "unknown key"),
        ({"icc": {"en": "ICC"}}, "icc", "must be a list of strings"),
        ({"icc": {"en": ["ICC"], "channel": 5}}, "icc", "channel"),
        ({"icc": {"rules": [{"any": ["ICC"], "near": {"within": "page", "en": ["judge"]}}]}}, "icc", "within"),
        ({"icc": {"en": ["{court} ICC"]}}, "icc", "unknown group"),
        ({"icc": {"en": ["(judge|prosecutor"]}}, "icc", "unbalanced parentheses"),
        ({"icc": {"en": ["(ICC)?"]}}, "icc", "matches empty text"),
        ({"Death Penalty": {"en": ["death penalty"]}}, "Death Penalty", "flag name"),
    ],
    ids=[
        "bad-regex",
        "unknown-language",
        "empty-list",
        "no-phrases",
        "unknown-key",
        "not-a-list",
        "channel",
        "within",
        "unknown-group",
        "parentheses",
        "empty-match",
        "flag-name",
    ],
)
def test_invalid_rules_raise_one_line_naming_the_file_the_flag_and_the_problem(
    raw: dict[str, Any], flag: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        compile_rules(raw, source="config/pressbot.toml")

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"config/pressbot.toml: flags.{flag}")
    assert problem in message


def test_invalid_rules_make_the_command_exit_2_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, [GOOD_FEED])
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[flags.broken]\nen = ["re:[unclosed"]\n', encoding="utf-8"
    )
    env = {**os.environ, "PRESSBOT_CONFIG": str(config)}

    result = subprocess.run(
        [sys.executable, "-m", "bot", "flags", "test", str(DEV)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "flags.broken" in line and "bad regex" in line and "Traceback" not in result.stderr


# ---------------------------------------------------------------- pressbot flags test


@pytest.fixture
def labeled(tmp_path: Path) -> Path:
    rows = [
        {"id": "tp", "title": "ICC judges issue a warrant", "summary": "", "content": "", "labels": {"icc": True}},
        {
            "id": "fp",
            "title": "ICC Prosecutor [sic] visits Zembara",
            "summary": "",
            "content": "",
            "labels": {"icc": False},
        },
        {"id": "fn", "title": "The Hague court acts", "summary": "", "content": "", "labels": {"icc": True}},
        {
            "id": "tn",
            "title": "Budget adopted",
            "summary": "",
            "content": "",
            "labels": {"icc": False, "reprisal": False},
        },
    ]
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("PRESSBOT_CONFIG", str(write_config(tmp_path, [GOOD_FEED])))
    return CliRunner().invoke(flags, ["test", *args])


def test_flags_test_prints_scores_and_misclassified_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labeled: Path
) -> None:
    result = run_flags(tmp_path, monkeypatch, str(labeled))

    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "recall" in result.output
    assert "false positive icc: fp ICC Prosecutor [sic] visits Zembara" in result.output
    assert "“ICC” (title)" in result.output
    assert "false negative icc: fn The Hague court acts" in result.output


def test_flags_test_json_is_one_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labeled: Path) -> None:
    result = run_flags(tmp_path, monkeypatch, str(labeled), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    icc = report["flags"]["icc"]
    assert (report["items"], icc["tp"], icc["fp"], icc["fn"], icc["tn"]) == (4, 1, 1, 1, 1)
    assert (icc["precision"], icc["recall"]) == (0.5, 0.5)
    assert report["flags"]["reprisal"]["tn"] == 1  # only the row labeled for it counts
    assert icc["false_positives"][0]["matches"][0]["phrase"] == "ICC"


def test_flags_test_does_not_score_a_flag_no_line_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only_icc = tmp_path / "icc.jsonl"
    only_icc.write_text(json.dumps({"id": 1, "title": "ICC judges issue a warrant", "labels": {"icc": True}}) + "\n")

    report = json.loads(run_flags(tmp_path, monkeypatch, str(only_icc), "--json").output)
    assert report["flags"]["icc"]["recall"] == 1.0
    assert report["flags"]["reprisal"]["precision"] is None and report["flags"]["reprisal"]["recall"] is None
    printed = run_flags(tmp_path, monkeypatch, str(only_icc)).output
    assert "not measured (no line labels them): reprisal" in printed


def test_flags_test_refuses_a_file_that_labels_no_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unlabeled = tmp_path / "unlabeled.jsonl"
    unlabeled.write_text(json.dumps({"id": 1, "title": "ICC judges issue a warrant"}) + "\n", encoding="utf-8")

    result = run_flags(tmp_path, monkeypatch, str(unlabeled))

    assert result.exit_code == 2 and "no line labels any of the flags" in result.output


def test_flags_test_refuses_a_file_that_is_not_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\nnot json\n', encoding="utf-8")

    result = run_flags(tmp_path, monkeypatch, str(bad))

    assert result.exit_code == 2 and "line 2" in result.output


# ---------------------------------------------------------------- the speed benchmark's feed


def test_the_benchmark_feed_holds_every_item_it_is_given() -> None:
    import feedparser

    spec = importlib.util.spec_from_file_location("flag_benchmark", REPO / "benchmarks" / "flags.py")
    assert spec and spec.loader
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)

    feed = feedparser.parse(benchmark.build_rss(DEV_ROWS[:25]))

    assert not feed.bozo and len(feed.entries) == 25
    assert feed.entries[3].title == DEV_ROWS[3]["title"]


def test_flags_test_breaks_scores_down_by_language_and_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {"id": "a", "lang": "en", "case": "icc-acronym", "title": "ICC judges issue a warrant"},
        {"id": "b", "lang": "en", "case": "icc-acronym", "title": "The Hague court acts"},
        {"id": "c", "lang": "fr", "case": "icc-fr", "title": "La Cour pénale internationale siège"},
        {"id": "d", "lang": "fr", "case": "neg-cricket", "title": "Cricket : la coupe du monde"},
    ]
    for row in rows:
        row["labels"] = {"icc": row["id"] != "d"}
    labeled = tmp_path / "cases.jsonl"
    labeled.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")

    report = json.loads(run_flags(tmp_path, monkeypatch, str(labeled), "--json").output)
    icc = report["flags"]["icc"]
    assert icc["by_lang"]["en"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 0, "precision": 1.0, "recall": 0.5}
    assert (icc["by_lang"]["fr"]["tp"], icc["by_lang"]["fr"]["tn"], icc["by_lang"]["fr"]["recall"]) == (1, 1, 1.0)
    assert icc["by_case"]["icc-acronym"]["recall"] == 0.5 and icc["by_case"]["neg-cricket"]["tn"] == 1
    assert icc["false_negatives"] == [{"id": "b", "title": "The Hague court acts", "lang": "en", "case": "icc-acronym"}]
    assert report["flags"]["reprisal"]["by_lang"] == {}

    printed = run_flags(tmp_path, monkeypatch, str(labeled)).output
    assert "icc by language" in printed and "icc by case" in printed
    assert [line.split("│")[1:4] for line in printed.splitlines() if "icc-acronym " in line] == [
        [" icc-acronym ", " 1.000     ", " 0.500  "]
    ]
    assert "false negative icc: b The Hague court acts [en] [icc-acronym]" in printed


def test_flags_test_without_lang_or_case_prints_no_breakdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labeled: Path
) -> None:
    printed = run_flags(tmp_path, monkeypatch, str(labeled)).output
    assert "by language" not in printed and "by case" not in printed


# ---------------------------------------------------------------- scripts beyond Latin (issue 15)

SCRIPTS = {
    "icc": {
        "zh": ["国际刑事法院"],
        "ar": ["المحكمة الجنائية الدولية"],
        "ru": ["Международн* уголовн* суд*"],
    },
    "reprisal": {
        "rules": [
            {"zh": ["报复"], "unless": {"within": 4, "zh": ["关税"]}},
            {"zh": ["(因|由于)与(联合国|委员会)合作"], "near": {"within": 12, "zh": ["拘留", "逮捕"]}},
            {"ar": ["(ب|ل)?تعاون*"], "near": {"within": 5, "ar": ["اعتقال"]}},
        ]
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("律师向国际刑事法院提交了证据。", {"icc"}),  # no spaces around the name
        ("国际刑事法院检察官", {"icc"}),
        ("国际刑事法庭", set()),  # the ICTY's tribunal, one character apart
        ("他们因与联合国合作而遭到报复。", {"reprisal"}),
        ("他由于与委员会合作被拘留。", {"reprisal"}),
        ("美国宣布对钢铁征收报复性关税。", set()),
        ("قدمت المنظمة ملفا إلى المحكمة الجنائية الدولية", {"icc"}),
        ("ورحبت بالمحكمة الجنائية الدولية", {"icc"}),  # ب + ال
        ("دعم للمحكمة الجنائيّة الدوليّة", {"icc"}),  # ل + (ا)ل, and a shadda
        ("والمحكمة الجنائية الدولية", {"icc"}),  # و + ال
        ("اعتقال ناشط بسبب تعاونه مع الأمم المتحدة", {"reprisal"}),
        ("اعتقال ناشط لتعاونه مع الأمم المتحدة", {"reprisal"}),  # ل on a word without the article
        ("жалоба в Международный уголовный суд", {"icc"}),
        ("решение МЕЖДУНАРОДНОГО УГОЛОВНОГО СУДА", {"icc"}),
    ],
)
def test_phrases_match_without_word_spaces_and_with_arabic_prefixes(text: str, expected: set[str]) -> None:
    assert flags_of(compile_rules(SCRIPTS, source="pressbot.toml"), text) == expected


def test_an_arabic_match_shows_the_word_as_written_with_its_prefix() -> None:
    rules = compile_rules(SCRIPTS, source="pressbot.toml")
    [match] = match_flags(rules, title="ورحبت بالمحكمة الجنائية الدولية. جملة أخرى", teaser="", content="")
    assert match.phrase == "بالمحكمة الجنائية الدولية"
    assert match.sentence == "ورحبت بالمحكمة الجنائية الدولية."


def test_a_chinese_sentence_ends_at_its_full_stop() -> None:
    rules = compile_rules(SCRIPTS, source="pressbot.toml")
    [match] = match_flags(rules, title="", teaser="", content="第一句话。律师向国际刑事法院提交了证据。第三句话。")
    assert match.sentence == "律师向国际刑事法院提交了证据。"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("وفبكلال محكمةً ّـأإى国际法院 Ёж.,\n")))
def test_folding_keeps_the_length_of_any_text(text: str) -> None:
    assert len(fold_text(text)) == len(text)


# ---------------------------------------------------------------- acceptance sets (issue 15)

DATA = REPO / "tests" / "data"
ACCEPTANCE = [
    "labeled-dev.jsonl",
    "eval-tune.jsonl",
    "eval-holdout.jsonl",
    *(f"eval-{lang}{part}.jsonl" for lang in ("ar", "zh", "ru", "pt") for part in ("-dev", "")),
    # The third blind sets (en/fr/es, then ar/zh/ru/pt): blind before the rules were tuned on
    # their misses, no longer since (tests/data/EVAL.md).
    "eval-blind3.jsonl",
    "eval-blind3-intl.jsonl",
    # The fourth blind sets, the same way: measured blind first, then the rules tuned on
    # their misses (tests/data/EVAL.md).
    "eval-blind4.jsonl",
    "eval-blind4-intl.jsonl",
]


def acceptance_cases() -> list[Any]:
    cases = []
    for name in ACCEPTANCE:
        path = DATA / name
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
        for lang in sorted({row["lang"] for row in rows}) or ["?"]:
            for flag in ("reprisal", "icc"):
                marks = [] if rows else [pytest.mark.skip(reason=f"tests/data/{name} is not there yet")]
                cases.append(pytest.param(name, lang, flag, id=f"{name}:{lang}:{flag}", marks=marks))
    return cases


@pytest.fixture(scope="module")
def acceptance_reports(rules: FlagRules) -> dict[str, dict[str, Any]]:
    return {
        name: evaluate(rules, [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()])
        for name in ACCEPTANCE
        if (DATA / name).exists()
    }


@pytest.mark.parametrize(("name", "lang", "flag"), acceptance_cases())
def test_each_labeled_set_has_precision_98_and_recall_97_per_flag_and_language(
    acceptance_reports: dict[str, dict[str, Any]], name: str, lang: str, flag: str
) -> None:
    score = acceptance_reports[name]["flags"][flag]
    part = score["by_lang"][lang]
    misclassified = [item for item in score["false_positives"] + score["false_negatives"] if item.get("lang") == lang]
    assert part["tp"] + part["fn"] >= 5, "too few positives to measure"
    assert part["precision"] >= 0.98, misclassified
    assert part["recall"] >= 0.97, misclassified


# Hard negatives that must flag nothing, written for this test (issue 15): bodies called ICC
# that are not the Court, courts that are not it, and retaliation that is not a reprisal.
@pytest.mark.parametrize(
    ("title", "teaser"),
    [
        ("Defender sent off for retaliation", "The league banned the defender for three matches after he retaliated."),
        ("Hockey: blueliner suspended for retaliatory slash", "The defender retaliated against an opponent."),
        (
            "Captain fined, opponent reprimanded for retaliation",
            "The ICC’s code of conduct: the referee reported both.",
        ),
        ("ICC announces World Cup fixtures", "The International Cricket Council named the umpires."),
        ("ICC arbitration rules revised", "The International Chamber of Commerce court of arbitration in Paris."),
        ("ICC publishes 2027 building code", "The International Code Council’s model codes for States."),
        ("UNICC hosts the Prosecutor’s cloud", "The UN International Computing Centre (formerly ICC) signed a deal."),
        ("ICJ delivers advisory opinion", "The International Court of Justice sat in The Hague."),
        ("ICJ: judicial independence under threat", "The International Commission of Jurists warned judges."),
        ("Committee reviews compliance with the ICCPR", "The Human Rights Committee met the delegation."),
        ("GANHRI accredits NHRIs", "The former ICC of national institutions reviewed the Paris Principles."),
        ("国际板球理事会（ICC）公布赛程", "ICC首席执行官表示奖金增加。"),
        ("国际商会（ICC）国际仲裁院受理新案", "仲裁院依据ICC仲裁规则管理程序。"),
        ("国际法院就海洋划界作出判决", "国际法院是联合国主要司法机关。"),
        ("后卫报复性犯规被红牌罚下", "主裁判出示红牌。"),
        ("Международная торговая палата (ICC) сообщила о рекорде", "Арбитражный суд МТП зарегистрировал дела."),
        ("Международный Суд ООН вынес решение", "Суд заслушал стороны в Гааге."),
        ("Жертвы политических репрессий почтены", "Сталинские репрессии унесли тысячи жизней."),
        ("محكمة العدل الدولية تصدر رأيها الاستشاري", "قالت المحكمة في لاهاي إن على الدول التعاون."),
        ("المجلس الدولي للكريكيت (ICC) يعلن الجدول", "البطولة تنطلق في حزيران."),
        ("المحكمة الجنائية الدولية ليوغوسلافيا السابقة: فتح الأرشيف", "الآلية الدولية تتيح الوثائق."),
        ("قمع المتظاهرين في العاصمة", "اعتقلت الشرطة مئتي شخص."),
        ("Tribunal Internacional de Justiça decide fronteira", "O Tribunal sediado em Haia decidiu."),
        ("CPI ouve ex-diretor", "A Comissão Parlamentar de Inquérito (CPI) pediu a quebra de sigilo."),
        ("Zagueiro expulso após revidar", "Foi uma retaliação desnecessária, disse o técnico do time."),
        ("Repressão policial a ato de estudantes", "A polícia reprimiu o protesto."),
        # the third blind sets' kinds of false alarm, written for this test
        (
            "Border clashes",
            "The army shelled two villages in retaliation for an ambush that killed six soldiers; the UN urged calm.",
        ),
        (
            "Senate passes Rome Statute bill",
            "The law provides for cooperation with the Court, including the arrest of suspects named in warrants.",
        ),
        ("حملة توعية في المدارس", "برنامج بالتعاون مع الوزارة لمكافحة التنمر والتخويف بين الطلاب."),
        ("篮球联赛冲突", "纪律委员会表示，今后任何报复动作都会受到处罚。"),
        ("Críquete: jogador suspenso", "O arremessador foi punido por retaliação contra o rebatedor, diz o Conselho."),
    ],
)
def test_look_alikes_in_seven_languages_flag_nothing(rules: FlagRules, title: str, teaser: str) -> None:
    assert flags_of(rules, title, teaser) == set()


# The kinds of release issue 15 found missed, written for this test in each language.
@pytest.mark.parametrize(
    ("title", "teaser", "expected"),
    [
        (
            "Eastmark: activist detained",
            "She briefed the Committee against Torture in March. Two weeks later she was arrested at home.",
            {REPRISAL},
        ),
        ("What can States do to protect those who cooperate with the United Nations?", "", {REPRISAL}),
        (
            "NGOs smeared after sending evidence to the ICC Prosecutor",
            "This is an attempt to punish them for cooperating with the Court.",
            {REPRISAL, ICC},
        ),
        ("Why the International Criminal Courts matter", "", {ICC}),
        ("Letter to the Internacional Criminal Court", "", {ICC}),
        (
            "Ostenland : un défenseur interpellé",
            "Il a témoigné devant le Comité des droits de l’homme. Dix jours plus tard, il était arrêté.",
            {REPRISAL},
        ),
        (
            "Qadira: amenazas a quienes colaboran con la CPI",
            "Las organizaciones que colaboran con la CPI denuncian amenazas.",
            {REPRISAL, ICC},
        ),
        ("律师因与联合国合作而遭到报复", "", {REPRISAL}),
        ("维权人士与特别报告员会面后被限制出境", "", {REPRISAL}),
        ("国际刑院检察官申请逮捕令", "", {ICC}),
        ("Преследование за сотрудничество с ООН", "Активистов вызывали в полицию.", {REPRISAL}),
        ("Запугивание и репрессии в отношении лиц, сотрудничающих с ООН", "", {REPRISAL}),
        ("Прокурор Международного уголовного суда открыл расследование", "", {ICC}),
        ("تهديدات لمحام بسبب تعاونه مع المحكمة الجنائية الدولية", "", {REPRISAL, ICC}),
        ("الأمين العام: أعمال التخويف والانتقام مستمرة", "", {REPRISAL}),
        ("دعم للمحكمة الجنائية الدولية", "", {ICC}),
        (
            "Defensora presa depois de informar o Comitê da ONU",
            "Foi detida duas semanas depois de falar com o Comitê.",
            {REPRISAL},
        ),
        ("Procurador do TPI pede mandados de detenção", "", {ICC}),
        # kinds the third blind sets found missed, written for this test
        (
            "Lawyer convicted of 'false information'",
            "The prosecution's case rested on and cited the alternative report she sent to the Human Rights Committee.",
            {REPRISAL},
        ),
        ("Jornalista acusado", "A acusação invoca o relatório-sombra que ele enviou ao Comitê.", {REPRISAL}),
        ("Адвокат под следствием", "Обвинительное заключение ссылается на теневой доклад для Комитета.", {REPRISAL}),
        ("律师被起诉", "起诉书援引了该组织提交给条约机构的影子报告。", {REPRISAL}),
        (
            "Academic detained",
            "He guided UN investigators to the site; officials said he would be punished for that cooperation.",
            {REPRISAL},
        ),
        ("Ativista ameaçada", "Os ataques são um castigo pela sua cooperação com o Tribunal, diz a ONG.", {REPRISAL}),
        (
            "Activists questioned",
            "Police summoned three activists; the NGO asked the State to stop harassing those who turn to the UN.",
            {REPRISAL},
        ),
        ("Лидеры общин", "Власти преследуют тех, кто обращается в ООН.", {REPRISAL}),
        ("The Internatinal Criminal Court's budget", "", {ICC}),
        ("Budget de la Cours pénale internationale", "", {ICC}),
        ("Ордер МУСа на генерала", "Палата рассмотрела обвинения в военных преступлениях.", {ICC}),
    ],
)
def test_the_kinds_of_release_issue_15_found_missed(
    rules: FlagRules, title: str, teaser: str, expected: set[str]
) -> None:
    assert flags_of(rules, title, teaser) == expected
