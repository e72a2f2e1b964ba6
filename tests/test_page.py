"""The page's words follow its corpus (qa/serving/page.py): examples from the question bank or the headings.

Files only, no model: tmp_path corpora written here, and the real corpus/.
"""

from __future__ import annotations

import json
import shutil

from conftest import CORPUS
from qa.serving.page import INTRO, TITLE, bank_examples, example_questions, heading_examples, page_text
from qa.settings import Settings

FENTANYL = """Fentanyl Facts

What Is Fentanyl?

Fentanyl is a synthetic opioid up to 50 times stronger than heroin.

How does it reach the street?

It is often pressed into fake pills.

Can Naloxone Reverse A Fentanyl Overdose?

Yes; naloxone reverses a fentanyl overdose, though more than one dose may be needed.
"""


def test_the_real_corpus_offers_one_bank_question_per_article_best_covered_first():
    assert bank_examples(CORPUS) == ["does ketamine therapy get you high",
                                     "how does ketamine help with opioid withdrawal",
                                     "is there treatment for ketamine addiction", "does naloxone reverse ketamine"]


def test_a_corpus_on_another_topic_never_speaks_of_ketamine(tmp_path):
    (tmp_path / "fentanyl-facts.txt").write_text(FENTANYL, encoding="utf-8")
    # Headings that are questions, without the one that needs its article ("How does it reach ...").
    assert heading_examples(tmp_path, Settings()) == ["What Is Fentanyl?"]
    words = page_text(Settings(corpus_dir=tmp_path))
    assert words == page_text(Settings(corpus_dir=tmp_path))
    assert (words.title, words.intro) == (TITLE, INTRO)
    assert "ketamine" not in json.dumps(words.__dict__).lower()
    # Its own example questions come first once it has a bank; a stale bank file of an article
    # that is gone is left out.
    bank = tmp_path / "questions"
    bank.mkdir()
    (bank / "fentanyl-facts.jsonl").write_text(json.dumps(
        {"question": "is fentanyl stronger than heroin", "source": "fentanyl-facts.txt",
         "answer": "Fentanyl is a synthetic opioid up to 50 times stronger than heroin."}) + "\n", encoding="utf-8")
    shutil.copy(CORPUS / "questions" / "naloxone-and-ketamine.jsonl", bank)
    assert example_questions(tmp_path, Settings()) == ["is fentanyl stronger than heroin"]


def test_settings_win_over_the_corpus(tmp_path):
    settings = Settings(corpus_dir=CORPUS, page_title="Harm reduction Q&A", page_intro="Quotes only.",
                        page_examples=("what is naloxone",))
    assert page_text(settings).__dict__ == {"title": "Harm reduction Q&A", "intro": "Quotes only.",
                                            "examples": ("what is naloxone",)}
    assert page_text(Settings(corpus_dir=tmp_path / "missing")).examples == ()
