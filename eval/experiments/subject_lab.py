"""Workbench for refusal's and the labels' signals: refit on a fitting run's records, leave one corpus out.

Not part of the product. `python -m qa eval --suite --fit-refusal --work DIR` writes every question's
refusal signals, answered or not, to DIR/fitting-records.json; this refits the plain regime on them
with other signal sets, and prints each corpus's figures leave one corpus out and under the fit on
every fitting corpus (the one that would ship), with the product's six sets:

    python eval/experiments/subject_lab.py --records DIR/fitting-records.json --plain sentence,coverage,contrast,subject
    python eval/experiments/subject_lab.py --records ... --unclear 0.25 --plain sentence,coverage,contrast,unclear

`--unclear S` adds a derived signal, "unclear": subject x (1 - contrast / S), clipped to [0, 1] (subject read
only where the answer's article does not stand out from the next: a question about a disease the corpus does
not hold matches its neighbours alike, a lay question on one page's subject does not).

Refusal decides only whether the chosen sentence is given, so these are the figures the engine would
give (qa/evaluation/calibration.py, `under`). The web sets are reported, never fitted on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qa.evaluation import calibration
from qa.models import refusal
from qa.models.refusal import load_labels, load_model
from qa.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True)
    parser.add_argument("--plain", action="append", default=[], help="the plain regime's signals, comma-separated")
    parser.add_argument("--corpora", default="squad,medquad,webdev")
    parser.add_argument("--unclear", type=float, help="add the signal subject x (1 - contrast / UNCLEAR)")
    args = parser.parse_args()
    settings = Settings()
    groups = json.loads(Path(args.records).read_text(encoding="utf-8"))
    if args.unclear:
        subject, contrast = refusal.SIGNALS.index("subject"), refusal.SIGNALS.index("contrast")
        refusal.SIGNALS = refusal.SIGNALS + ("unclear",)  # read by name wherever a regime's signals are read
        for rows in groups.values():
            for r in rows:
                if r.get("signals") is not None:
                    s = r["signals"][:subject + 1]
                    r["signals"] = s + [s[subject] * float(np.clip(1 - s[contrast] / args.unclear, 0, 1))]
    before = load_model(settings.refusal_model_file, settings.model)
    bars = load_labels(settings.labels_file, before)
    knobs = (settings.model, settings.refusal_wrongly_refused, settings.strong_match_precision,
             settings.may_help_off_topic)
    keeping = dict(keep=before, keep_regimes=("examples",), keep_bars=bars, subject_at_most=settings.strong_match_subject)
    for signals in args.plain or [",".join(refusal.REGIME_SIGNALS["plain"])]:
        refusal.REGIME_SIGNALS["plain"] = tuple(signals.split(","))
        loo = calibration.leave_one_out(groups, *knobs, corpora=args.corpora.split(","), **keeping)
        fitted = calibration.fit_both(groups, *knobs, **keeping)
        named = {"the fit on every fitting corpus": fitted}
        corpora = calibration.report_under(groups, named, False, settings.strong_match_subject)
        product = calibration.report_under(groups, named, True, settings.strong_match_subject)
        print(f"\n#### plain regime: {signals}; fitted {fitted[0].regimes['plain']}")
        print(calibration.format_report(loo, corpora, product))


if __name__ == "__main__":
    main()
