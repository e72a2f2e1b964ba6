"""The quality measurement: its arithmetic on hand-made outcomes, and the real command end to end."""

from __future__ import annotations

import contextlib
import io
import json

from qa.cli import main
from qa.evaluation.evaluate import Outcome, Question, score

REVERSES = Question("t1", "keyword", "does naloxone reverse ketamine", (), "naloxone.txt",
                    ("does not reverse the effects",))
DOSE = Question("t2", "keyword", "what dose is used", (), "therapy.txt", ("0.5 mg/kg",))
FRANCE = Question("t3", "unanswerable", "what is the capital of France", (), None, ())


def test_scores_are_counted_from_the_first_relevant_passage_and_the_answer_sentence():
    outcomes = [
        # relevant passage second (the first one is from another article), right answer
        Outcome([("therapy.txt", "Naloxone does not reverse the effects of Ketamine."),
                 ("naloxone.txt", "Naloxone does not reverse the effects of Ketamine.")],
                "Naloxone does not reverse the effects of Ketamine.", True),
        # nothing relevant shown, and refused
        Outcome([("therapy.txt", "Doses vary.")], None, False),
        # an unanswerable question answered anyway
        Outcome([("naloxone.txt", "Paris is not mentioned.")], "Paris is not mentioned.", True),
    ]
    result = score("engine", [REVERSES, DOSE, FRANCE], outcomes)
    assert (result.hit1, result.hit3, result.mrr) == (0.0, 0.5, 0.25)
    assert result.answer_accuracy == 0.5
    assert result.refused_answerable == 0.5 and result.refused_unanswerable == 0.0
    assert result.by_kind == {"keyword": 0.5, "unanswerable": 0.0}
    assert [m.split()[0] for m in result.misses] == ["t2", "t3"]


def test_eval_command_scores_the_engine_and_both_baselines(tmp_path, real_settings, engine):
    questions = tmp_path / "questions.jsonl"
    rows = [{"id": "a", "kind": "keyword", "question": "does naloxone reverse ketamine", "history": [],
             "source": "naloxone-and-ketamine.txt", "evidence": ["Naloxone does not reverse the effects of Ketamine"]},
            {"id": "b", "kind": "unanswerable", "question": "what is the capital of France", "history": [],
             "source": None, "evidence": []}]
    questions.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["eval", "--corpus", str(real_settings.corpus_dir), "--index", str(real_settings.index_dir),
                       "--questions", str(questions), "--json"])
    assert status == 0
    systems = {r["system"]: r for r in json.loads(out.getvalue())}
    assert set(systems) == {"engine", "bm25", "dense-1000", "rrf"}
    assert systems["engine"]["hit1"] == 1.0 and systems["engine"]["answer_accuracy"] == 1.0
    assert systems["engine"]["refused_unanswerable"] == 1.0 and systems["engine"]["refused_answerable"] == 0.0
