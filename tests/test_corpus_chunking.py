"""Loader and chunker on the five real articles and on tiny hand-made ones."""

from __future__ import annotations

import re

import pytest

from conftest import CORPUS
from qa.reading.chunking import chunk_article, chunk_articles
from qa.reading.corpus import load_corpus, parse_article
from qa.settings import Settings
from qa.reading.text import normalise_space, split_sentences

EXPECTED_TITLES = {
    "naloxone-and-ketamine.txt": "Unveiling the Mystery: Does Naloxone Reverse Ketamine Effects?",
    "ketamine-reversal-effect.txt": "The Surprising Truth: Does Ketamine Have a Reversal Effect?",
    "ketamine-addiction.txt": "Ketamine Addiction: Risks, Side Effects, & Treatment",
    "ketamine-for-opioid-withdrawal.txt": "Ketamine For Opioid Withdrawal",
    # This page has no title line: the title comes from the file name.
    "ketamine-therapy-does-it-get-you-high.txt": "Ketamine Therapy Does It Get You High",
}

BOILERPLATE = ["Leave a Comment", "Verify Insurance", "GET YOUR FREE SAMPLE", "933-4145",
               "Your email address will not be published", "This article is in the category",
               "https://", "visit this resource", "check out this", "helpline"]


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(CORPUS, Settings())


def all_text(article) -> str:
    return "\n".join(s.heading + "\n" + "\n".join(b.lead + "\n" + "\n".join(b.items) for b in s.blocks)
                     for s in article.sections)


def test_titles_of_the_five_articles(corpus):
    assert {a.source: a.title for a in corpus.articles} == EXPECTED_TITLES
    assert corpus.skipped == ()


def test_sections_are_found(corpus):
    sections = {a.source: [s.heading for s in a.sections] for a in corpus.articles}
    naloxone = sections["naloxone-and-ketamine.txt"]
    assert naloxone[:6] == ["Introduction", "Understanding Ketamine and Naloxone", "What is Ketamine?",
                            "What is Naloxone?", "The Potential Interaction Between Naloxone and Ketamine",
                            "Does Naloxone Reverse Ketamine Effects?"]
    assert "1. Comprehensive Assessment" in naloxone
    # the title printed twice at the top is not a section
    assert naloxone.count("Unveiling the Mystery: Does Naloxone Reverse Ketamine Effects?") == 0
    withdrawal = sections["ketamine-for-opioid-withdrawal.txt"]
    assert withdrawal[:3] == ["Introduction", "Key Takeaways", "Understanding Opioid Withdrawal"]
    assert "Can you still take ketamine treatment while on methadone?" in withdrawal
    therapy = sections["ketamine-therapy-does-it-get-you-high.txt"]
    assert "Understanding Ketamine: Medical Uses vs. Recreational Misuse" in therapy
    assert "Is ketamine therapy FDA-approved?" in therapy


@pytest.mark.parametrize("phrase", BOILERPLATE)
def test_boilerplate_is_gone(corpus, phrase):
    raw = "".join(p.read_text(encoding="utf-8") for p in CORPUS.glob("*.txt"))
    assert phrase.lower() in raw.lower(), "the raw corpus should contain it, or the test proves nothing"
    for article in corpus.articles:
        assert phrase.lower() not in all_text(article).lower(), article.source


def test_content_around_boilerplate_survives(corpus):
    addiction = next(a for a in corpus.articles if a.source == "ketamine-addiction.txt")
    text = all_text(addiction)
    # A bare URL removed from the middle of a sentence leaves the sentence.
    assert "In addition, the absence of psychotherapy makes it hard" in text
    assert "Snorting ketamine may result in severe adverse side effects" in text


def test_sentence_splitter_keeps_abbreviations_and_decimals():
    text = ("Clinicians typically administer 0.5 mg/kg, a safe level. Wilkowska et al. ’s case report "
            "proposed it. C.J.A.M. contributed to it. Is it safe? Yes!")
    assert split_sentences(text) == ["Clinicians typically administer 0.5 mg/kg, a safe level.",
                                      "Wilkowska et al. ’s case report proposed it.",
                                      "C.J.A.M. contributed to it.", "Is it safe?", "Yes!"]


def test_markdown_headings_and_tiny_article():
    article = parse_article("# My Title\n\nIntro line here.\n\n## Part One\n\nFirst sentence. Second one.\n",
                            "notes.md", Settings())
    assert article.title == "My Title"
    assert [s.heading for s in article.sections] == ["Introduction", "Part One"]


def test_chunks_keep_sentences_and_sections_whole(corpus):
    settings = Settings()
    for article in corpus.articles:
        chunks = chunk_article(article, settings)
        sections = {s.heading: s for s in article.sections}
        for chunk in chunks:
            assert len(chunk.text) <= settings.chunk_chars or len(chunk.sentences) == 1
            for sentence in chunk.sentences:
                heading = chunk.section_of(sentence)
                section_text = normalise_space(" ".join(
                    b.lead + " " + " ".join(b.items) for s in article.sections if s.heading == heading
                    for b in s.blocks))
                assert sentence in chunk.text
                assert normalise_space(sentence) in section_text, "a sentence is filed under its own section"
                if heading != chunk.section:  # a later short section of the passage: its heading is a line
                    assert f"\n{heading}\n" in f"\n{chunk.text}\n"
            assert chunk.section in sections
        # every sentence of every section lands whole in some chunk, filed under that section
        for section in article.sections:
            for block in section.blocks:
                for sentence in split_sentences(block.lead) + [s for i in block.items for s in split_sentences(i)]:
                    assert any(sentence in c.sentences and c.section_of(sentence) == section.heading
                               for c in chunks), sentence


STRUCTURED = """The Effect of a Vaccine

Background

Observational studies suggest that the vaccine reduces hospital stays among older people. Health authorities \
therefore give it to them first. Questions remain about bias in those studies, which is why this one was done.

Setting

England and Wales.

Participants

Adults aged 55 to 75 years.

Results

""" + " ".join(f"Finding number {i} of the study is reported here in a sentence of some length." for i in range(14))


def test_short_sections_share_a_passage_and_keep_their_headings():
    settings = Settings(chunk_chars=800, section_min_chars=300)
    article = parse_article(STRUCTURED, "study.txt", settings)
    chunks = chunk_article(article, settings)
    joined = [c for c in chunks if "England and Wales." in c.sentences]
    assert len(joined) == 1
    chunk = joined[0]
    # Background, too long to be short, still takes the short ones after it while they fit
    assert chunk.section == "Background" and chunk.text.startswith("Observational studies")
    assert "\nSetting\nEngland and Wales.\nParticipants\nAdults aged 55 to 75 years." in chunk.text
    assert chunk.section_of("England and Wales.") == "Setting"
    assert chunk.section_of("Adults aged 55 to 75 years.") == "Participants"
    assert chunk.section_of(chunk.sentences[0]) == "Background"
    assert "Setting" not in chunk.sentences and "Participants" not in chunk.sentences  # headings never answer
    # Results is longer than a passage: it never joins, and its passages are its own
    results = [c for c in chunks if any(s.startswith("Finding number") for s in c.sentences)]
    assert len(results) >= 2 and all(c.section == "Results" and not c.sentence_sections for c in results)
    # 0: every section in passages of its own, as before
    alone = chunk_article(article, settings.replace(section_min_chars=0))
    assert [c.section for c in alone if "England and Wales." in c.sentences] == ["Setting"]
    assert all(not c.sentence_sections for c in alone)
    # an article with example questions keeps a passage per section: its questions point at sections
    kept = chunk_articles([article], settings, keep_sections={"study.txt"})
    assert [c.section for c in kept if "England and Wales." in c.sentences] == ["Setting"]
    assert chunk_articles([article], settings, keep_sections={"other.txt"}) == chunks


def test_the_articles_with_example_questions_are_the_banks_sources(tmp_path):
    from qa.models.question_bank import BANK_FOLDER, bank_sources, load_bank
    (tmp_path / BANK_FOLDER).mkdir()
    assert bank_sources(load_bank(tmp_path)[0]) == frozenset()
    (tmp_path / BANK_FOLDER / "a.jsonl").write_text(
        '{"question": "what is it", "source": "study.txt", "answer": "England and Wales."}\n', encoding="utf-8")
    assert bank_sources(load_bank(tmp_path)[0]) == {"study.txt"}


def test_title_and_section_travel_with_every_chunk(corpus):
    for chunk in chunk_articles(corpus.articles, Settings()):
        assert chunk.index_text.startswith(f"{chunk.title}\n{chunk.section}\n")


def test_bullet_list_stays_with_its_lead_in(corpus):
    chunks = chunk_articles(corpus.articles, Settings())
    with_items = [c for c in chunks if "• Flu-Like Symptoms" in c.text]
    assert with_items and all("Common symptoms include:" in c.text for c in with_items)
    # a list split across chunks repeats its lead-in in each part
    parts = [c for c in chunks if "Common symptoms include:" in c.text]
    assert len(parts) >= 2 and all(re.search(r"^• ", c.text, re.M) for c in parts)


def test_neighbouring_chunks_overlap():
    text = "Title Line\n\nSection\n\n" + " ".join(f"Sentence number {i} is about topic {i}." for i in range(40))
    chunks = chunk_article(parse_article(text, "t.txt", Settings()), Settings(chunk_chars=200, overlap_sentences=1))
    assert len(chunks) > 3
    for first, second in zip(chunks, chunks[1:]):
        assert first.sentences[-1] == second.sentences[0]


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe\x00b\x00i\x00n", "binary"),
    ("caf\u00e9 au lait".encode("latin-1"), "not UTF-8"),
    (b"", "no article text"),
    (b"Leave a Comment\n", "no article text"),
])
def test_unusable_files_are_skipped_with_a_reason(tmp_path, content, reason):
    (tmp_path / "good.txt").write_text("Good Title\n\nA sentence about naloxone.\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(content)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    loaded = load_corpus(tmp_path, Settings())
    assert [a.source for a in loaded.articles] == ["good.txt"]
    reasons = {s.source: s.reason for s in loaded.skipped}
    assert reason in reasons["bad.txt"]
    assert "not an article file" in reasons["image.png"]


def test_duplicate_article_is_skipped(tmp_path):
    text = "Same Title\n\nThe same sentence about ketamine.\n"
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text(text)
    loaded = load_corpus(tmp_path, Settings())
    assert [a.source for a in loaded.articles] == ["a.txt"]
    assert "same text as a.txt" in loaded.skipped[0].reason
