"""Query expansion (qa/answering/synonyms.py): the file format, the matching rules, and the shipped list.

Pure text: no model needed. The engine-level effect is in tests/test_engine.py.
"""

from __future__ import annotations

import re

import pytest

from conftest import CORPUS
from qa.reading.chunking import chunk_articles
from qa.reading.corpus import load_corpus
from qa.errors import SettingsError
from qa.settings import Settings
from qa.answering.synonyms import Expansion, Synonyms

RULES = """
# street names
special k, ket, k => ketamine
narcan => naloxone
dope sick => withdrawal, opioid withdrawal
k-hole => dissociation
"""


@pytest.fixture
def synonyms() -> Synonyms:
    return Synonyms.parse(RULES)


def test_known_words_get_the_articles_words_beside_them(synonyms):
    text, found = synonyms.expand("will Narcan help on a bad special k trip")
    assert text == "will Narcan (naloxone) help on a bad special k (ketamine) trip"
    assert found == (Expansion("Narcan", ("naloxone",)), Expansion("special k", ("ketamine",)))


def test_canonical_writes_a_question_in_the_articles_words_for_comparing_questions(synonyms):
    assert synonyms.canonical("how long does Narcan last when dope-sick") == \
        "how long does naloxone last when withdrawal"
    assert synonyms.canonical("what is naloxone") == "what is naloxone"
    assert Synonyms.empty().canonical("how long does narcan last") == "how long does narcan last"


def test_longest_phrase_wins_and_only_whole_words_match(synonyms):
    assert synonyms.expand("is special k the same as k")[0] == "is special k (ketamine) the same as k (ketamine)"
    assert synonyms.expand("ok thanks, keto diet, ketchup")[1] == ()  # "k" inside words is not "k"
    assert synonyms.expand("I'm ok k")[0] == "I'm ok k (ketamine)"


def test_hyphens_and_spaces_are_the_same_and_case_is_ignored(synonyms):
    for typed in ("K-Hole", "k hole", "k - hole"):
        assert synonyms.expand(f"what is a {typed}")[1] == (Expansion(typed, ("dissociation",)),)


def test_words_the_question_already_has_are_not_added_again(synonyms):
    assert synonyms.expand("does narcan (naloxone) work")[0] == "does narcan (naloxone) work"
    text, found = synonyms.expand("opioid withdrawal or dope sick")
    assert text == "opioid withdrawal or dope sick"  # both of its words are already there
    assert found == ()


def test_unknown_questions_are_left_exactly_as_typed(synonyms):
    question = "What is the capital of France?"
    assert synonyms.expand(question) == (question, ())
    assert Synonyms.empty().expand("narcan") == ("narcan", ())


def test_rules_naming_the_same_variant_add_up():
    rules = Synonyms.parse("ket => ketamine\nket, kitty => ketamine, dissociative anesthetic")
    assert rules.rules["ket"] == ("ketamine", "dissociative anesthetic")
    assert rules.rules["kitty"] == ("ketamine", "dissociative anesthetic")


@pytest.mark.parametrize("line", ["narcan naloxone", "narcan => naloxone => more", " => naloxone", "narcan =>"])
def test_a_malformed_line_is_an_error_naming_it(tmp_path, line):
    path = tmp_path / "synonyms.txt"
    path.write_text(f"# fine\nket => ketamine\n{line}\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=rf"{re.escape(str(path))} line 3"):
        Synonyms.load(path)


def test_a_missing_file_is_an_error_and_none_means_no_expansion(tmp_path):
    with pytest.raises(SettingsError, match="cannot read the synonyms file"):
        Synonyms.load(tmp_path / "absent.txt")
    assert len(Synonyms.load(None)) == 0


def test_every_word_the_shipped_list_adds_is_a_word_of_the_articles():
    # A right side the articles never use would add noise and never match.
    settings = Settings()
    shipped = Synonyms.load(settings.synonyms_file)
    assert len(shipped) > 100
    articles = load_corpus(CORPUS, settings).articles
    text = " ".join(chunk.index_text for chunk in chunk_articles(articles, settings))
    text = " ".join(text.lower().replace("’", "'").split())
    missing = sorted({term for adds in shipped.rules.values() for term in adds
                      if not re.search(r"(?<!\w)" + re.escape(term.lower()) + r"(?!\w)", text)})
    assert missing == []
