"""Summaries: the lede in 2–3 sentences, no boilerplate, in the release's language."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.fulltext import extract_text
from bot.language import detect_language
from bot.summarize import summarize

PAGES = Path(__file__).parent / "pages"
# A sentence ends at . ! ? or … followed by the start of another or by the end.
SENTENCE_END = re.compile(r"[.!?…][’”»\"')\]]*(?=\s+[A-ZÀ-Ý‘“«¿¡\"']|$)")
BOILERPLATE = re.compile(
    r"inquir|contact|@|\+\d|more information|share|photo|read more|plus d.informations|más información"
    r"|partager|compartir",
    re.IGNORECASE,
)


def sentence_count(summary: str) -> int:
    return len(SENTENCE_END.findall(summary))


def read_seed(path: Path) -> tuple[str, str]:
    """The corpus format: the first line is the title, each further line a paragraph."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[0], "\n\n".join(lines[1:])


SEED_LEDES = {
    # The scraped page opens with a teaser of another post ("Here are 10 human rights
    # impacts…"), repeated at its foot among the related posts: not this release's lede.
    "000_a2da384c4a5aaf7d.txt": "The American Civil Liberties Union (ACLU), the International Commission of "
    "Jurists (ICJ), and the International Service for Human Rights (ISHR) welcome UN independent experts’ "
    "condemnation today",
    "001_a2f482eca3b35d7d.txt": "Threats of reprisal by the US Secretary of State against lawyers, judges, "
    "prosecutors and investigators",
}


@pytest.mark.parametrize("name", sorted(SEED_LEDES), ids=lambda name: name[:3])
def test_seed_releases_are_summarised_by_their_lede(shared: Path, name: str) -> None:
    title, body = read_seed(shared / "corpus" / "seeds" / name)

    summary = summarize(body, title=title, language="en")

    print(f"\n{name}: {summary}")
    assert summary.startswith(SEED_LEDES[name])
    assert 2 <= sentence_count(summary) <= 3
    assert len(summary) <= 400
    assert not BOILERPLATE.search(summary)
    assert "Here are 10" not in summary and "20.03.2019" not in summary and "[" not in summary


@pytest.mark.parametrize(
    ("text", "title", "language", "expected"),
    [
        (
            "Share this\n\nPhoto: UN Photo/Jean-Marc Ferré\n\n12 May 2025\n\n"
            "UN experts today condemned the detention of three defenders in Valdoria. "
            "They had briefed the Committee against Torture in Geneva.\n\nMore information here.\n\n"
            "For inquiries, please contact: Jane Doe, jane@example.org, +41 22 555 01 23",
            "",
            "en",
            "UN experts today condemned the detention of three defenders in Valdoria. "
            "They had briefed the Committee against Torture in Geneva.",
        ),
        (
            "Partager : Facebook X Courriel\n\nPublié le 3 juin 2025\n\n"
            "Paris, le 3 juin 2025 – La FIDH demande la libération de l’avocate Hélène Duval. "
            "Elle est détenue depuis trois semaines.\n\n"
            "Pour plus d’informations, veuillez contacter : presse@example.org",
            "",
            "fr",
            "La FIDH demande la libération de l’avocate Hélène Duval. Elle est détenue depuis trois semaines.",
        ),
        (
            "Compartir en: Facebook X WhatsApp\n\nPublicado el 14 de marzo de 2025\n\n"
            "GINEBRA (14 de marzo de 2025) – "
            "Los expertos de la ONU pidieron la liberación de tres defensores. "
            "Fueron detenidos tras hablar ante el Comité.\n\nPara más información: prensa@example.org, "
            "tel. +51 1 555 0101\n\nFIN",
            "",
            "es",
            "Los expertos de la ONU pidieron la liberación de tres defensores. "
            "Fueron detenidos tras hablar ante el Comité.",
        ),
        (
            "Valdoria must release the defenders\n\nValdoria must release the defenders.\n\n"
            "Three lawyers were arrested on Monday. Their families have not been told where they are held.",
            "Valdoria must release the defenders",
            "en",
            "Three lawyers were arrested on Monday. Their families have not been told where they are held.",
        ),
        (
            "The experts met the minister on Monday.\n\nFor inquiries, please contact:\n\n"
            "Background: in 2016 the Secretary-General designated a senior official to lead on reprisals.",
            "",
            "en",
            "The experts met the minister on Monday.",
        ),
    ],
    ids=[
        "en-buttons-date-contacts",
        "fr-partager-contact",
        "es-compartir-fin",
        "title-repeated",
        "tail-stops",
    ],
)
def test_boilerplate_is_left_out(text: str, title: str, language: str, expected: str) -> None:
    assert summarize(text, title=title, language=language) == expected


@pytest.mark.parametrize(
    ("sentences", "language"),
    [
        (("Mr. Smith met Dr. Jones at No. 10 Downing Street on Monday.",
          "He said the U.S. would act before the end of the month, with its allies.",
          "Under art. 7 of the Statute, that is a crime against humanity."), "en"),
        (("M. Dupont a rencontré Me Duval à Genève.",
          "Selon l’art. 5 du Statut de Rome, la Cour est compétente pour ces crimes.",
          "Mme Martin n’a pas commenté."), "fr"),
        (("El Sr. García habló ante la ONU el lunes.",
          "La Dra. López respondió con firmeza a las preguntas de los periodistas.",
          "Según el art. 5 del Estatuto, la Corte es competente."), "es"),
    ],
    ids=["en", "fr", "es"],
)  # fmt: skip
def test_abbreviations_do_not_end_sentences(sentences: tuple[str, ...], language: str) -> None:
    text = " ".join(sentences)

    assert summarize(text, language=language, max_chars=1000) == text
    # Room for the first sentence and part of the second: the cut comes after whole words.
    cut = summarize(text, language=language, max_chars=len(sentences[0]) + len(sentences[1]) - 5)
    assert cut.startswith(sentences[0] + " ")
    assert cut.endswith("…")
    assert sentences[1].startswith(cut.removeprefix(sentences[0] + " ").removesuffix("…"))


def test_a_long_first_sentence_is_cut_at_a_word_boundary() -> None:
    text = "The experts " + "repeatedly " * 60 + "condemned the arrests. Second sentence here."

    summary = summarize(text, max_chars=120)

    assert len(summary) <= 120
    assert summary.endswith("repeatedly…")


def test_at_most_three_sentences() -> None:
    text = " ".join(f"Sentence number {n} is short." for n in range(1, 8))

    assert summarize(text) == "Sentence number 1 is short. Sentence number 2 is short. Sentence number 3 is short."


def test_a_teaser_cut_off_by_its_feed_is_still_summarised() -> None:
    teaser = "UN experts today condemned the arrest of three defenders in Valdoria, saying the detentions"

    assert summarize(teaser, title="Valdoria arrests") == teaser


@pytest.mark.parametrize("text", ["", "   \n\n ", "Share this\n\nFor inquiries, please contact: a@example.org"])
def test_nothing_to_summarise_gives_an_empty_string(text: str) -> None:
    assert summarize(text) == ""


WORDS = st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=15)


@given(
    words=st.lists(WORDS, min_size=1, max_size=120),
    stops=st.lists(st.sampled_from(["", ".", ",", "!"]), min_size=120, max_size=120),
    max_chars=st.integers(min_value=20, max_value=500),
)
def test_summary_fits_and_never_cuts_a_word(words: list[str], stops: list[str], max_chars: int) -> None:
    text = " ".join(word + stop for word, stop in zip(words, stops, strict=False))

    summary = summarize(text, max_chars=max_chars)

    assert len(summary) <= max_chars
    source_words = {word.strip(".,!") for word in text.split()}
    for word in summary.removesuffix("…").split():
        assert word.strip(".,!") in source_words


@pytest.mark.parametrize(("page", "language"), [("fr_release.html", "fr"), ("es_release.html", "es")])
def test_french_and_spanish_releases_are_summarised_in_their_language(page: str, language: str) -> None:
    text = extract_text((PAGES / page).read_bytes())
    assert text is not None

    summary = summarize(text, language=detect_language(text, None))

    assert detect_language(summary, None) == language
    assert 2 <= sentence_count(summary) <= 3
    assert not BOILERPLATE.search(summary)


def test_labeled_dev_summaries_are_in_the_items_language_and_fit(shared: Path) -> None:
    lines = (shared / "corpus" / "labeled-dev.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines]
    wrong = []
    for entry in items:
        summary = summarize(entry["content"] or entry["summary"], title=entry["title"], language=entry["lang"])
        assert summary, entry["id"]
        assert len(summary) <= 400, entry["id"]
        if entry["lang"] != "en" and detect_language(summary, None) != entry["lang"]:
            wrong.append((entry["id"], entry["lang"], summary))
    foreign = sum(entry["lang"] != "en" for entry in items)
    assert foreign >= 100
    assert len(wrong) <= foreign // 50, wrong  # measured: 0 of 130
