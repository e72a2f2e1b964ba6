"""Refusal refitted on the suite (qa/evaluation/calibration.py): the records' arithmetic, what is fitted on, leave one out."""

from __future__ import annotations

import random

import pytest

from qa.evaluation import calibration
from qa.models.refusal import RefusalModel, RegimeModel


def _model(bar: float) -> RefusalModel:
    weights = {"sentence": 1.0, "example": 0.0, "coverage": 0.0, "unknown": -1.0, "contrast": 0.0}
    return RefusalModel("m", {"plain": RegimeModel(weights, 0.0, bar), "examples": RegimeModel(weights, 0.0, bar)}, ())


def _row(kind: str, signals, right: bool = True, regime: str = "plain") -> dict:
    return {"id": "x", "kind": kind, "answerable": kind == "answerable", "found": True,
            "right": right and kind == "answerable", "first_relevant": right, "margin": 99.0, "regime": regime,
            "label": None, "answer_score": 0.5, "signals": list(signals)}


def test_a_refusal_model_only_takes_answers_away_from_an_answer_everything_run():
    rows = [_row("answerable", (3.0, 0, 0.5, 0.0, 0.0)), _row("answerable", (0.5, 0, 0.5, 0.0, 0.0)),
            _row("off-topic", (0.2, 0, 0.1, 0.6, 0.0)),
            {**_row("answerable", (0, 0, 0, 0, 0)), "signals": None, "regime": None, "found": False, "right": False}]
    under = calibration.under(rows, _model(bar=1.0))
    assert [r["found"] for r in under] == [True, False, False, False]
    assert [r["right"] for r in under] == [True, False, False, False]  # a refused right answer is not given
    assert under[0]["margin"] == pytest.approx(2.0) and under[2]["margin"] == pytest.approx(-1.4)
    figures = calibration.figures(under)
    assert figures["answer accuracy"] == pytest.approx(1 / 3)
    assert figures["wrongly refused"] == pytest.approx(2 / 3) and figures["off-topic refused"] == 1.0


def test_the_check_only_corpus_and_the_product_check_sets_are_never_fitted_on():
    groups = {g: [] for g in ("squad/fresh", "squad/grown", "medquad/fresh", "web/fresh", "web/grown",
                              "web/grown/dev", "squad/grown/dev", "squad/grown/sealed", "product/dev",
                              "product/heldout", "plain/dev")}
    assert sorted(calibration.fitting_groups(groups)) == [
        "medquad/fresh", "plain/dev", "product/dev", "squad/fresh", "squad/grown", "squad/grown/dev"]
    assert sorted(calibration.fitting_groups(groups, leave_out="squad")) == [
        "medquad/fresh", "plain/dev", "product/dev"]


def test_leave_one_out_reports_each_corpus_under_a_fit_that_never_saw_it():
    rng = random.Random(0)

    def group(shift: float) -> list[dict]:  # answerable above, off-topic below; `shift` moves the whole corpus
        return ([_row("answerable", (rng.gauss(3 + shift, 1), 0, 0.6, 0.0, 0.3)) for _ in range(40)]
                + [_row("off-topic", (rng.gauss(0 + shift, 1), 0, 0.2, 0.5, 0.0), right=False) for _ in range(20)])

    groups = {"one/fresh": group(0.0), "two/fresh": group(0.0), "three/fresh": group(2.0),
              "product/dev": [_row("answerable", (rng.gauss(3, 1), 1, 0.6, 0.0, 0.0), regime=r) for r in
                              ["examples"] * 30] + [_row("off-topic", (0, 0, 0.1, 0.6, 0.0), False, "examples")] * 10}
    report = calibration.leave_one_out(groups, "m", 0.07, 0.9, 0.1, corpora=("one", "two", "three"))
    assert report["one/fresh"]["fitted_on"] == ["product/dev", "three/fresh", "two/fresh"]
    assert report["one/fresh"]["off-topic refused"] >= 0.8
    # "three" sits higher than the others: a fit without it lets more of its off-topic questions through
    assert report["three/fresh"]["off-topic refused"] < report["one/fresh"]["off-topic refused"]


def test_the_report_names_every_group_under_every_model():
    rows = [_row("answerable", (3.0, 0, 0.5, 0.0, 0.0)), _row("off-topic", (0.2, 0, 0.1, 0.6, 0.0), right=False)]
    groups = {"squad/fresh": rows, "product/dev": rows, "squad/grown/dev": rows, "plain/dev": rows}
    models = {"one": (_model(1.0), None)}
    corpora = calibration.report_under(groups, models, product=False)
    product = calibration.report_under(groups, models, product=True)
    assert list(corpora["one"]) == ["squad/fresh"] and sorted(product["one"]) == ["product/dev", "squad/grown/dev"]
    text = calibration.format_report({"squad/fresh": corpora["one"]["squad/fresh"]}, corpora, product)
    assert "leave one corpus out" in text and "under one" in text and "squad/grown/dev" in text


def test_the_refusal_refit_chooses_the_strong_bars_precision_as_the_label_fit_does_never_by_the_corpus_left_out():
    rng = random.Random(1)

    def group(low: float) -> list[dict]:  # an answer is right more often the higher its margin, from `low` up
        rows = []
        for _ in range(80):
            margin = rng.uniform(0.0, 4.0)
            rows.append({**_row("answerable", (margin + 1.0, 0, 0.6, 0.0, 0.3), right=rng.random() < low + 0.1 * margin),
                         "answer_score": 0.6})
        return rows + [_row("off-topic", (rng.gauss(0, 0.3), 0, 0.2, 0.5, 0.0), right=False) for _ in range(20)]

    groups = {"one/fresh": group(0.62), "two/fresh": group(0.62), "webdev/fresh": group(0.62),
              "three/fresh": group(0.3),
              "product/dev": [_row("answerable", (rng.gauss(3, 1), 1, 0.6, 0.0, 0.0), regime="examples")
                              for _ in range(30)] + [_row("off-topic", (0, 0, 0.1, 0.6, 0.0), False, "examples")] * 10}
    fixed = calibration.fit_both(groups, "m", 0.07, 0.9, 0.1, leave_out="three")[1]
    chosen = calibration.fit_both(groups, "m", 0.07, 0.9, 0.1, leave_out="three", promise=0.9)[1]
    # At the first target, a corpus left out (or never fitted on) gets strong answers wrong too often: a stricter
    # target is chosen, so a higher bar.
    assert chosen.strong["plain"] > fixed.strong["plain"]
    # "three", left out, has no say in the choice (it would choose stricter still): the bars of a fit without it.
    without = {g: rows for g, rows in groups.items() if g != "three/fresh"}
    assert chosen.strong == calibration.fit_both(without, "m", 0.07, 0.9, 0.1, promise=0.9)[1].strong
