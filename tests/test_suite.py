"""The calibration suite (qa/evaluation/suite.py): its corpora, its judge, the labels fitted on it, and a small run of it."""

from __future__ import annotations

import math

import pytest

from qa.evaluation import suite
from qa.answering.result import EMERGENCY_NO_PASSAGE, MAY_HELP_MESSAGE, NOT_FOUND, Result
from qa.evaluation.evaluate import Outcome, Question, _letters, score
from qa.models.refusal import LabelBars
from qa.answering.search import example_lifts
from qa.answering.triage import Triage

MEDQUAD_DOC = {
    "id": "0001", "collection": "2_GARD_QA", "focus": "Fictional Syndrome", "url": "https://example.org",
    "qa": [
        {"qtype": "information", "question": "What is (are) Fictional Syndrome ?",
         "answer": "Fictional syndrome is a rare condition of the made-up gland. It is named after nobody."},
        {"qtype": "symptoms", "question": "What are the symptoms of Fictional Syndrome ?",
         "answer": "Symptoms include:    - A persistent tickle in the left elbow.    - Sudden fondness for jazz."},
    ],
}


def test_a_medquad_page_is_laid_out_by_part_with_headings_from_its_qtype_not_its_question():
    page = suite.medquad_page(MEDQUAD_DOC)
    lines = page.splitlines()
    assert lines[0] == "# Fictional Syndrome"
    assert "## About Fictional Syndrome" in lines and "## Symptoms" in lines
    assert "What are the symptoms" not in page
    assert "- A persistent tickle in the left elbow." in lines  # the inline list is a list again


def test_a_passage_answers_a_medquad_question_when_it_lies_inside_the_gold_section():
    gold = _letters(MEDQUAD_DOC["qa"][0]["answer"])
    q = Question("q", "answerable", "What is (are) Fictional Syndrome ?", (), "f.md", (), gold)
    inside = Outcome([("f.md", "Fictional syndrome is a rare condition of the made-up gland.")],
                     "Fictional syndrome is a rare condition of the made-up gland.", True, "strong match")
    elsewhere = Outcome([("f.md", "Symptoms include a persistent tickle in the left elbow.")],
                        "A persistent tickle in the left elbow.", True, "strong match")
    assert score("x", [q], [inside]).mrr == 1.0 and score("x", [q], [inside]).answer_accuracy == 1.0
    scores = score("x", [q], [elsewhere])
    assert scores.mrr == 0.0 and scores.answer_accuracy == 0.0
    assert scores.labels["strong match"]["precision"] == 0.0


def test_the_second_web_set_asks_the_same_pages_as_the_first_and_is_only_checked(tmp_path):
    """health-web-dev.jsonl (written independently for the same three pages) runs as its own suite corpus, on the
    web pages' indexes, its last eight unanswerable questions off the pages' topics, never fitted on."""
    from qa.evaluation import calibration
    from qa.evaluation.benchmark import ANSWERABLE, OFF_TOPIC, UNANSWERABLE

    web, webdev = suite.load_corpora(("web", "webdev"))
    assert webdev.name == "webdev" and webdev.folder == web.folder == "web" and webdev.files == web.files
    assert webdev.kinds() == {ANSWERABLE: 60, UNANSWERABLE: 12, OFF_TOPIC: 8}
    assert {q.id for q in webdev.questions if q.kind == OFF_TOPIC} == {f"w{n:03d}" for n in range(73, 81)}
    rows = [{"kind": "answerable", "answerable": True, "regime": "plain", "signals": [0.0] * 5}]
    groups = {"webdev/fresh": rows, "web/grown": rows, "squad/fresh": rows, "product/dev": rows}
    assert set(calibration.fitting_groups(groups)) == {"squad/fresh", "product/dev"}
    with pytest.raises(ValueError, match="webdev"):
        suite.load_corpora(("nosuch",))


def test_labels_are_scored_per_label_and_may_help_by_its_first_passage():
    answerable = Question("a", "answerable", "q", (), "f.md", ("the answer",))
    off = Question("o", "off-topic", "q2", (), None, ())
    outcomes = [Outcome([("f.md", "the answer is here")], None, False, "may help"),
                Outcome([("f.md", "something")], "nothing", True, "partial match")]
    labels = score("x", [answerable, off], outcomes).labels
    assert labels["may help"] == {"share": 0.5, "precision": 1.0, "count": 1}
    assert labels["partial match"]["precision"] == 0.0


def test_a_may_help_is_not_an_answer_but_it_is_not_a_flat_refusal_either():
    answerable = [Question(n, "answerable", "q", (), "f.md", ("the answer",)) for n in "abc"]
    outcomes = [Outcome([("f.md", "the answer is here")], None, False, "may help"),  # passages offered
                Outcome([("f.md", "something")], None, False),  # refused flatly
                Outcome([("f.md", "the answer is here")], "the answer", True, "partial match")]
    scores = score("x", answerable, outcomes)
    assert scores.refused_answerable == pytest.approx(2 / 3)  # the product's target counts both as refused
    assert scores.refused_answerable_flatly == pytest.approx(1 / 3)


def test_example_questions_rank_inside_an_article_but_lift_it_above_another_only_by_the_cap():
    # a.txt has example questions (0.9 and 0.3), b.txt none; their text matches alike (0.5).
    articles, having = ["a.txt", "a.txt", "b.txt"], {"a.txt"}
    level = example_lifts([0.9, 0.3, 0.0], [0.5, 0.5, 0.5], articles, having, cap=0.0)
    assert level[0] == pytest.approx(level[2])  # the two articles start level
    assert level[0] - level[1] == pytest.approx(0.6)  # inside a.txt the example still ranks
    capped = example_lifts([0.9, 0.3, 0.0], [0.5, 0.5, 0.5], articles, having, cap=0.1)
    assert capped[0] - capped[2] == pytest.approx(0.1)  # at most the cap, however close the example
    assert example_lifts([0.9, 0.3, 0.0], [0.5, 0.5, 0.5], articles, having, cap=None) == [0.9, 0.3, 0.0]
    assert example_lifts([0.0, 0.0], [0.5, 0.7], ["b.txt", "c.txt"], set(), cap=0.4) == [0.0, 0.0]  # no bank


def _rows(group_margins):
    return [{"id": str(i), "kind": kind, "answerable": kind == "answerable", "found": margin >= 0, "right": right,
             "first_relevant": right, "margin": margin, "regime": "plain", "label": None}
            for i, (kind, margin, right) in enumerate(group_margins)]


def test_the_strong_bar_is_where_every_group_is_precise_enough_and_may_help_spares_off_topic_questions():
    one = _rows([("answerable", 3.0, True)] * 20 + [("answerable", 0.5, False)] * 5 + [("answerable", 0.4, True)] * 5
                + [("off-topic", -0.2, False), ("off-topic", -3.0, False), ("off-topic", -4.0, False)]
                + [("answerable", -0.1, True)])
    two = _rows([("answerable", 2.0, True)] * 20 + [("answerable", 1.0, False)] * 3
                + [("off-topic", -5.0, False)] * 10)
    bars = suite.fit_labels({"one/fresh": one, "two/fresh": two}, "key", precision=0.9, off_topic=0.10)
    assert bars.strong["plain"] == 2.0  # above both groups' wrong answers
    assert -3.0 < bars.may_help["plain"] <= -0.2 or bars.may_help["plain"] == 0.0
    figures = suite.apply_labels(one, bars)
    assert figures["strong match"]["precision"] == 1.0
    assert figures["off-topic refused flatly"]["share"] >= 2 / 3


def test_label_leave_one_out_never_fits_on_the_check_only_web_sets():
    """The labels' leave-one-out fits on what refusal's does (suite.fitting_groups): never on web or webdev, whose
    questions are a blind check. Here the web sets' wrong answers at high margins would raise the strong bar."""
    precise = _rows([("answerable", 3.0, True)] * 20 + [("answerable", 1.0, True)] * 20)
    checked = _rows([("answerable", 2.5, False)] * 10 + [("answerable", 4.0, True)] * 20)
    groups = {"squad/fresh": precise, "medquad/fresh": precise, "web/fresh": checked, "webdev/grown": checked,
              "product/dev": precise}
    report = suite.leave_one_out(groups, "key", precision=0.9, off_topic=0.10)
    with_web = suite.fit_labels({g: groups[g] for g in ("medquad/fresh", "web/fresh", "webdev/grown", "product/dev")},
                                "key", 0.9, 0.10)
    assert with_web.strong["plain"] == 3.0  # above the web sets' wrong answers
    assert report["squad/fresh"]["bars"]["strong"]["plain"] == 1.0  # fitted on medquad and dev alone
    assert report["squad/fresh"]["fitted_on"] == ["medquad/fresh", "product/dev"]
    shipped = suite.fit_labels(suite.fitting_groups(groups), "key", 0.9, 0.10)
    assert sorted(suite.fitting_groups(groups)) == ["medquad/fresh", "product/dev", "squad/fresh"]
    assert report["web/fresh"]["bars"]["strong"] == report["webdev/grown"]["bars"]["strong"] == shipped.strong
    assert report["web/fresh"]["labels"]["strong match"]["precision"] == pytest.approx(2 / 3)  # checked, as shipped


def test_a_question_on_the_subject_that_no_sentence_answers_gets_may_help_and_an_emergency_never_a_bare_refusal():
    base = dict(question="q", query="q", found=False, answer=None, answer_source=None, answer_score=0.0,
                passages=())
    assert Result(**base).message == NOT_FOUND
    assert Result(**base, may_help=True).kind == "may_help"
    assert Result(**base, may_help=True).message == MAY_HELP_MESSAGE
    emergency = Result(**base, triage=Triage(emergency="medical"))
    assert emergency.emergency and emergency.message == EMERGENCY_NO_PASSAGE != NOT_FOUND


def test_label_bars_fitted_with_another_refusal_model_are_not_used(tmp_path):
    from qa.models.refusal import load_labels, load_model, refusal_key
    from qa.settings import Settings

    refusal = load_model(Settings().refusal_model_file, Settings().model)
    path = tmp_path / "labels.json"
    LabelBars({"examples": 1.0, "plain": 1.0}, {"examples": -1.0, "plain": -1.0}, "someone-else").save(path)
    assert load_labels(path, refusal) is None
    LabelBars({"examples": 1.0, "plain": 2.0}, {"examples": -1.0, "plain": -0.5}, refusal_key(refusal)).save(path)
    assert load_labels(path, refusal).strong["plain"] == 2.0


def test_the_shipped_label_bars_belong_to_the_shipped_refusal_model():
    from qa.models.refusal import load_labels, load_model
    from qa.settings import Settings

    settings = Settings()
    if not settings.labels_file.exists():
        pytest.skip("no fitted labels")
    assert load_labels(settings.labels_file, load_model(settings.refusal_model_file, settings.model)) is not None


@pytest.mark.slow
def test_the_small_suite_holds_its_floors(tmp_path):
    """Two to four articles of each style, fresh: the engine above floors set well under its measured figures.

    Measured 2026-12-06 (issue-24): MRR / answers / wrongly refused / off-topic refused: squad 0.917 / 0.750 /
    0.050 / 1.000; medquad 0.802 / 0.750 / 0.000 / 0.600; web 0.708 / 0.350 / 0.217 / 1.000; no "strong match"
    given (the shipped bars give it rarely off the seed corpus)."""
    from qa.evaluation import calibration
    from qa.models.refusal import load_model
    from qa.settings import Settings
    from tests.conftest import TUNED_DIR

    settings = Settings(tuned_dir=TUNED_DIR)
    results = suite.run_suite(settings, tmp_path, setups=("fresh",), product=False, say=lambda m: None, small=True)
    by_corpus = {r.corpus: r for r in results}
    assert set(by_corpus) == {"squad", "medquad", "web"}
    floors = {"squad": (0.70, 0.45), "medquad": (0.60, 0.45), "web": (0.50, 0.25)}  # MRR, answer accuracy
    refusal = load_model(settings.refusal_model_file, settings.model)
    for name, r in by_corpus.items():
        # refusal's figures follow from the records' signals (what qa/evaluation/calibration.py refits on), question by question
        assert [x["found"] for x in calibration.under(r.records, refusal)] == [x["found"] for x in r.records], name
        engine = r.scores[0]
        mrr, accuracy = floors[name]
        assert engine.mrr >= mrr, (name, engine.mrr)
        assert engine.answer_accuracy >= accuracy, (name, engine.answer_accuracy)
        assert engine.refused_answerable <= 0.35, (name, engine.refused_answerable)
        strong = engine.labels.get("strong match")
        assert strong is None or strong["precision"] >= 0.6, (name, strong)
        off = engine.by_kind.get("refused off-topic", math.nan)
        assert math.isnan(off) or off >= 0.4, (name, off)
