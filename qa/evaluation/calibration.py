"""Refusal and the labels fitted on the calibration suite, leave one corpus out.

Owns `python -m qa eval --suite --fit-refusal`. Refusal fitted on one corpus
learns that corpus's style (fitted on SQuAD alone, it refused 0.35 of
MedQuAD's questions about pages not in the corpus: issue 24), so it is fitted
here on the suite's corpora together, each corpus and setup a group weighing
the same (qa.models.refusal.fit), beside the product's dev questions on the seed
corpus, with and without its example questions.

How: the suite is run once with a refusal model that answers everything
(`answer_everything`), so every question has its answer sentence judged and
its signals recorded (qa.evaluation.evaluate.records). Refusal decides only whether that
sentence is given, never which one, so any refusal model's figures follow from
those records by arithmetic (`under`): a refused question is not answered,
its margin is the new model's. That lets one run

- fit refusal leave one corpus out: each corpus's figures come from a model
  fitted on the others (`leave_one_out`), the honest estimate of a corpus
  nobody fitted on, and then the label bars fitted likewise under that model;
- fit a model and bars on every corpus but the check-only ones
  (qa.evaluation.suite.CHECK_ONLY: the web pages' blind set is never fitted on), and
  report every corpus and the product's six sets under them and under the
  model shipped now. The fit replaces qa/fitted/ only with `--write`: it is
  shipped when the report says it transfers, not because it was run.

Limits: three corpora, so leaving one out fits on one or two styles; a corpus
unlike all the others is still predicted from them. The figures are exact for
the engine's answers only when the engine's other choices do not read the
refusal model (they do not today: qa/answer.py decides `found` last).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from qa.evaluation.benchmark import ANSWERABLE, OFF_TOPIC, UNANSWERABLE
from qa.models.refusal import LabelBars, LabelledSignals, RefusalModel, fit
from qa.evaluation.suite import (PRODUCT_GROUPS, TUNE_SET, apply_labels, choose_precision, corpus_of, fit_labels,
                                 fitting_groups)


def under(rows: Sequence[dict], model: RefusalModel) -> list[dict]:
    """Records of an answer-everything run as the engine would have given them with `model`."""
    out = []
    for r in rows:
        if r.get("signals") is None or r.get("regime") is None:
            out.append(dict(r))  # never reached refusal (no passage, or triage answered)
            continue
        margin = model.regimes[r["regime"]].margin(r["signals"], r["regime"])
        found = margin >= 0
        out.append({**r, "found": found, "right": bool(r["right"] and found), "margin": margin})
    return out


def labelled_signals(groups: Mapping[str, Sequence[dict]]) -> list[LabelledSignals]:
    """What refusal is fitted on. Not the suite corpora's own unanswerable questions (SQuAD 2.0's, written to look
    answerable from the very paragraph they were written on): telling those apart needs a reader model
    (qa/evaluation/benchmark.py), and fitting on them only blunts the signals that tell a question on another subject."""
    return [LabelledSignals(group, r["regime"], tuple(r["signals"]), bool(r["answerable"]))
            for group, rows in groups.items() for r in rows
            if r.get("signals") is not None and r.get("regime") is not None
            and not (corpus_of(group) not in PRODUCT_GROUPS and r["kind"] == UNANSWERABLE)]


def fit_both(groups: Mapping[str, Sequence[dict]], model_name: str, wrongly_refused: float, precision: float,
             off_topic: float, leave_out: str | None = None, keep: RefusalModel | None = None,
             keep_regimes: Sequence[str] = (), keep_bars: LabelBars | None = None,
             subject_at_most: float = math.inf, promise: float | None = None) -> tuple[RefusalModel, LabelBars]:
    """Refusal fitted on the fitting groups (`keep_regimes` taken from `keep` as they are), then the label bars
    fitted on the same groups under it (a kept regime keeps its bars from `keep_bars` too: its margins are
    unchanged). With a `promise` (Settings.strong_match_promise), the strong bars' precision target is chosen per
    regime as `python -m qa eval --suite --fit-labels` chooses it (suite.choose_precision, from `precision` up),
    on every group but `leave_out`'s, under the new refusal."""
    from qa.models.refusal import refusal_key

    fitting = fitting_groups(groups, leave_out)
    refusal = fit(labelled_signals(fitting), model_name, wrongly_refused, keep=keep, keep_regimes=keep_regimes)
    answered = {g: under(rows, refusal) for g, rows in fitting.items()}
    targets: float | dict[str, float] = precision
    if promise is not None:
        seen = {g: under(rows, refusal) for g, rows in groups.items() if leave_out is None or corpus_of(g) != leave_out}
        targets = choose_precision(seen, refusal_key(refusal), precision, promise, off_topic, subject_at_most)
    bars = fit_labels(answered, refusal_key(refusal), targets, off_topic, subject_at_most)
    for regime in keep_regimes if keep_bars is not None else ():
        bars.strong[regime], bars.may_help[regime] = keep_bars.strong[regime], keep_bars.may_help[regime]
        bars.strong_cosine[regime] = keep_bars.strong_cosine.get(regime, -1.0)
        bars.strong_agreement[regime] = dict(keep_bars.strong_agreement.get(regime, {}))
    return refusal, bars


def figures(rows: Sequence[dict], bars: LabelBars | None = None, subject_at_most: float = math.inf
            ) -> dict[str, float]:
    """Answer accuracy, answerable wrongly refused, unanswerable and off-topic refused; labels under `bars` (and
    Settings.strong_match_subject, `subject_at_most`)."""
    def share(values):
        values = list(values)
        return sum(values) / len(values) if values else math.nan

    answerable = [r for r in rows if r["answerable"]]
    out = {"answer accuracy": share(r["right"] for r in answerable),
           "wrongly refused": share(not r["found"] for r in answerable),
           "unanswerable refused": share(not r["found"] for r in rows
                                         if not r["answerable"] and r["kind"] != OFF_TOPIC),
           "off-topic refused": share(not r["found"] for r in rows if r["kind"] == OFF_TOPIC)}
    if bars is not None:
        out["labels"] = apply_labels(list(rows), bars, subject_at_most)
    return out


def leave_one_out(groups: Mapping[str, Sequence[dict]], model_name: str, wrongly_refused: float, precision: float,
                  off_topic: float, corpora: Sequence[str], keep: RefusalModel | None = None,
                  keep_regimes: Sequence[str] = (), keep_bars: LabelBars | None = None,
                  subject_at_most: float = math.inf, promise: float | None = None) -> dict[str, dict]:
    """Each suite corpus's groups under refusal and label bars fitted without that corpus (fit_both)."""
    report = {}
    for corpus in corpora:
        refusal, bars = fit_both(groups, model_name, wrongly_refused, precision, off_topic, leave_out=corpus,
                                 keep=keep, keep_regimes=keep_regimes, keep_bars=keep_bars,
                                 subject_at_most=subject_at_most, promise=promise)
        for group, rows in groups.items():
            if corpus_of(group) == corpus and group.count("/") == 1:
                report[group] = {"fitted_on": sorted(fitting_groups(groups, corpus)),
                                 "bars": {"strong": bars.strong, "strong_cosine": bars.strong_cosine,
                                          "strong_agreement": bars.strong_agreement,
                                          "may_help": bars.may_help},
                                 **figures(under(rows, refusal), bars, subject_at_most)}
    return report


def report_under(groups: Mapping[str, Sequence[dict]], models: Mapping[str, tuple[RefusalModel, LabelBars | None]],
                 product: bool, subject_at_most: float = math.inf) -> dict[str, dict[str, dict]]:
    """Figures under each named (refusal, bars) pair: of the suite's corpora and setups, or (`product`) of the
    product's sets on the seed corpus and on each grown one."""
    def wanted(group: str) -> bool:
        is_product = corpus_of(group) == "product" or group.count("/") == 2
        return is_product if product else not is_product and corpus_of(group) not in PRODUCT_GROUPS
    return {name: {g: figures(under(rows, refusal), bars, subject_at_most) for g, rows in groups.items() if wanted(g)}
            for name, (refusal, bars) in models.items()}


def _cell(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"


def _label_cell(labels: Mapping, name: str) -> str:
    v = labels.get(name)
    return f"{v['share']:.2f}/{v['precision']:.2f}" if v else "0/-"


def format_report(loo: Mapping[str, dict], corpora: Mapping[str, Mapping[str, dict]],
                  product: Mapping[str, Mapping[str, dict]]) -> str:
    header = (f"{'group':<16}{'answers':>9}{'wrongly':>9}{'unansw.':>9}{'off-top.':>9}{'strong':>12}{'partial':>12}"
              f"{'may help':>12}")
    lines = []
    for title, table in [("each corpus under a fit without it (leave one corpus out)", loo),
                         *((f"each corpus under {name}", rows) for name, rows in corpora.items())]:
        lines += ["", f"refusal and labels, {title}:", header]
        for group, f in sorted(table.items()):
            labels = f.get("labels", {})
            lines.append(f"{group:<16}{_cell(f['answer accuracy']):>9}{_cell(f['wrongly refused']):>9}"
                         f"{_cell(f['unanswerable refused']):>9}{_cell(f['off-topic refused']):>9}"
                         f"{_label_cell(labels, 'strong match'):>12}{_label_cell(labels, 'partial match'):>12}"
                         f"{_label_cell(labels, 'may help'):>12}")
    for name, sets in product.items():
        lines += ["", f"the product's sets under {name}:"]
        for group, f in sorted(sets.items()):
            labels = f.get("labels", {})
            lines.append(f"{group:<24}{_cell(f['answer accuracy']):>9}{_cell(f['wrongly refused']):>9}"
                         f"{_cell(f['unanswerable refused']):>9}{_label_cell(labels, 'strong match'):>12}")
    return "\n".join(lines).lstrip("\n")


def fitting_run(settings, work, corpora: Sequence[str], seed: int, say: Callable[[str], None] = print
                ) -> dict[str, list[dict]]:
    """Records of every question of the suite and the product's sets, answered with refusal switched off, by group:
    "<corpus>/<setup>", "<corpus>/grown/<set>", "product/<set>", and "plain/dev" (the seed articles without their
    example questions or fine-tuning)."""
    from qa.evaluation.evaluate import PRODUCT_SETS, load_questions, records, run_engine
    from qa.models.refusal import answer_everything
    from qa.evaluation.suite import open_plain_seed, run_suite

    everything = answer_everything(settings.model)
    results = run_suite(settings, work, corpora, baselines=False, product=True, seed=seed, refusal=everything,
                        say=say)
    groups: dict[str, list[dict]] = {}
    for r in results:
        if r.records:
            groups[f"{r.corpus}/{r.setup}"] = r.records
        for name, rows in r.product_records.items():
            groups[f"product/{name}" if r.corpus == "product" else f"{r.corpus}/{r.setup}/{name}"] = rows
    engine = open_plain_seed(settings, work, everything, say)
    dev = load_questions(PRODUCT_SETS[TUNE_SET])
    groups[f"plain/{TUNE_SET}"] = records(dev, run_engine(engine, dev))
    return groups


__all__ = ["under", "fit_both", "leave_one_out", "report_under", "figures", "fitting_run", "format_report",
           "fitting_groups", "ANSWERABLE"]
