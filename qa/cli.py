"""The command line: `python -m qa build | ask | eval`.

An edge of the product: library errors (QAError) become one line on standard
error and exit status 2, never a traceback. Progress and notices go to
standard error, results to standard output, so `--json`/`--jsonl` output can
be piped.

    python -m qa build [--corpus DIR] [--index DIR] [--model NAME] [--tune-epochs N] [--json]
    python -m qa ask "does naloxone reverse ketamine" [--json]
    python -m qa ask --jsonl < questions.jsonl > answers.jsonl
    python -m qa eval [--questions FILE] [--no-baselines] [--chunk-sizes 300,600,1000] [--fit-refusal]
    python -m qa eval --benchmark squad2-dev-half.json [--setup fresh,grown,plain] [--half fit|report|all]
    python -m qa eval --suite [--corpora squad,medquad,web] [--setup fresh,grown] [--work DIR] [--json]
    python -m qa feedback [--since DATE] [--json] [--all]
    python -m qa feedback promote ID [ID ...] [--answer "sentence of the article"] [--article NAME]
    python -m qa feedback delete ID [ID ...] | --before DATE | --everything
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Sequence

from qa.errors import QAError

EXIT_ERROR = 2


def _shipped_may_help(path, key: str) -> dict[str, float]:
    """The may-help bars of the label file at `path` when they were fitted for the refusal model `key`, else none."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        return {k: float(v) for k, v in data["may_help"].items()} if data.get("refusal") == key else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace):
    from qa.settings import Settings
    return Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, model=args.model,
                             tune_epochs=args.tune_epochs, store=getattr(args, "store", None),
                             milvus_uri=getattr(args, "milvus_uri", None))


def cmd_build(args: argparse.Namespace) -> int:
    from qa.indexing.build import build as build_index
    from qa.models.embedding import Embedder

    settings = _settings(args)
    embedder = Embedder(settings.model, settings.batch_size, settings.threads)  # loads only if there is text to embed
    report = build_index(settings, embedder, progress=_say, show_bar=sys.stderr.isatty() or args.progress)
    for skipped in report.skipped:
        _say(f"warning: skipped {skipped.source}: {skipped.reason}")
    if args.json:
        print(json.dumps(build_report_json(report), indent=2, ensure_ascii=False))
        return 0
    print(format_files(report.articles))
    print(f"Index built in {report.directory}\n"
          f"  files: {report.files}  sections: {report.sections}  chunks: {report.chunks}  "
          f"sentences: {report.sentences}  example questions: {report.questions}\n"
          f"  embedded: {report.embedded}  reused from cache: {report.reused}  "
          f"dense index: {report.dense_kind}\n"
          f"  fine-tuned model: {report.tuned_key or 'none (the model as it is)'}  "
          f"fine-tuning: {report.tune_seconds:.1f} s  questions embedded with: {report.encoder}\n"
          f"  seconds: {report.seconds:.1f}  (of which model load: {report.model_seconds:.1f})")
    if report.export_failure:
        print(f"  warning: the model could not be exported to ONNX ({report.export_failure}); questions are "
              "embedded with sentence-transformers, which loads torch and is slower. Check that every package "
              "of requirements.txt is installed, then build again.")
    return 0


def format_files(rows) -> str:
    """One line per file: what it was read as, or why it was skipped."""
    lines = ["Files:"]
    for row in rows:
        if row.skipped is not None:
            lines.append(f"  {row.source}  [{row.type}]  skipped: {row.skipped}")
        else:
            lines.append(f"  {row.source}  [{row.type}]  \"{row.title}\"  sections: {row.sections}  "
                         f"passages: {row.passages}")
    return "\n".join(lines)


def build_report_json(report) -> dict:
    return {
        "index": str(report.directory),
        "files": [row.to_dict() for row in report.articles],
        "articles": report.files, "sections": report.sections, "passages": report.chunks,
        "sentences": report.sentences, "example_questions": report.questions,
        "question_warnings": list(report.question_warnings),
        "embedded": report.embedded, "reused": report.reused, "dense_index": report.dense_kind,
        "tuned_model": report.tuned_key, "encoder": report.encoder, "export_failure": report.export_failure,
        "seconds": round(report.seconds, 2),
    }


def _open_engine(args: argparse.Namespace):
    from qa.serving.engine import Engine
    return Engine.open(_settings(args), build="missing", say=_say)


def start_loading_question_model(settings) -> None:
    """Begin loading the live index's question model (its ONNX export) in a thread, before the engine's
    modules are imported: onnxruntime sets up its session outside the GIL while they load, which
    takes a sixth off a cold `qa ask` on two cores (docs/BENCHMARKS.md, the runtime-only install).

    Found from the manifest with json alone (importing qa/question_model.py, which decides it, is the
    import this overlaps). The engine's own load takes this one only when it asks for the same
    export folder, key and threads; a guess that is wrong or an index that is not there is no error
    here: the ordinary load says what is wrong."""
    from pathlib import Path

    root = Path(settings.index_dir)
    try:
        generation = (root / "CURRENT").read_text(encoding="utf-8").strip()
        manifest = json.loads((root / generation / "manifest.json").read_text(encoding="utf-8"))
        encoder = manifest["model"]["encoder"]
        if encoder.get("backend") != "onnx" or not generation or "/" in generation:
            return
        key = str(encoder["key"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    tuned = Path(settings.tuned_dir) if settings.tuned_dir is not None else root / "tuned"
    from qa.models.onnx_model import start_loading
    start_loading(tuned / "onnx" / key, key, settings.query_threads)


def cmd_ask(args: argparse.Namespace) -> int:
    if not args.jsonl and not args.question:
        raise QAError('give a question, e.g. python -m qa ask "does naloxone reverse ketamine", or use --jsonl')
    start_loading_question_model(_settings(args))
    if args.jsonl:
        from qa.serving.jsonl import answer_jsonl
        engine = _open_engine(args)
        return answer_jsonl(engine, sys.stdin, sys.stdout, engine.settings.ask_workers)
    from qa.serving.engine import clean_question
    question = clean_question(" ".join(args.question), _settings(args))  # refuse bad input before loading anything
    engine = _open_engine(args)
    result = engine.ask(question, args.history or [])
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    print(format_result(result))
    return 0


def _wrap(text: str, first: str = "", rest: str | None = None) -> str:
    return textwrap.fill(text, 88, initial_indent=first, subsequent_indent=first if rest is None else rest)


def format_result(result) -> str:
    """The emergency line if any, the answer and its source, then the passages, for a terminal."""
    lines = [_wrap(result.emergency), ""] if result.emergency else []
    if result.found:
        src = result.answer_source
        lines += answer_lines(result)
        lines += [f"  -- {src.title} ({src.source}), section \"{src.section}\" ({src.match})", ""]
    else:
        lines += [result.message, ""]
    if not result.passages:  # small talk, or not English: nothing was searched
        return "\n".join(lines).rstrip()
    lines.append("Closest passages:" if not result.found else "Passages:")
    for number, p in enumerate(result.passages, 1):
        lines.append(f"[{number}] {p.title} > {p.section}  ({p.source})  {p.match}  score {p.score:.4f}"
                     f"  cosine {p.dense:.3f}  bm25 {p.lexical:.2f}")
        for paragraph in p.text.split("\n"):
            lines.append(_wrap(paragraph, "    "))
    return "\n".join(lines)


def answer_lines(result) -> list[str]:
    """The answer with the sentence it points back to, or inside its whole list (its item marked ">")."""
    context = result.context
    lines = [_wrap(context.before)] if context.before else []
    if context.list is None:
        return lines + [_wrap(result.answer)]
    lines += [_wrap(context.list.lead)] if context.list.lead else []
    for item in context.list.items:
        lines.append(_wrap(item, "  > " if result.answer in item else "  - ", "    "))
    return lines


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qa.evaluation import evaluate

    settings = _settings(args)
    if args.fit_refusal and args.suite:
        return _fit_refusal_suite(args, settings)
    if args.fit_refusal:
        return _fit_refusal(args, settings)
    if args.suite or args.fit_labels:
        return _eval_suite(args, settings)
    if args.benchmark:
        return _eval_benchmark(args, settings)
    questions = Path(args.questions) if args.questions else evaluate.DEFAULT_QUESTIONS
    if args.chunk_sizes:
        sizes = [int(size) for size in args.chunk_sizes.split(",")]
        rows = evaluate.sweep_chunk_sizes(settings, sizes, questions, say=_say)
        print(evaluate.format_table([scores for _, scores in rows]))
        return 0
    results = evaluate.evaluate(settings, questions, baselines=not args.no_baselines, say=_say)
    if args.json:
        print(json.dumps(evaluate.as_json(results), indent=2))
        return 0
    count = len(evaluate.load_questions(questions))
    print(f"{count} questions from {questions}\n")
    print(evaluate.format_table(results))
    engine = results[0]
    print("\nengine, share right by kind (unanswerable: share refused):")
    print("  " + "  ".join(f"{kind} {share:.2f}" for kind, share in engine.by_kind.items()))
    if args.verbose:
        print("\nengine misses:\n  " + "\n  ".join(engine.misses))
    return 0


def _fit_refusal(args: argparse.Namespace, settings) -> int:
    import datetime as dt
    from pathlib import Path

    from qa.evaluation import benchmark

    if not args.benchmark:
        raise QAError("fitting refusal needs a benchmark beside the dev questions: "
                      "python -m qa eval --fit-refusal --benchmark ../shared/benchmarks/squad2-dev-half.json")
    try:
        model = benchmark.fit_refusal(Path(args.benchmark), settings, seed=args.seed,
                                      work=Path(args.work) / "fit" if args.work else None,
                                      wrongly_refused=args.wrongly_refused or benchmark.WRONGLY_REFUSED, say=_say)
    except ValueError as exc:
        raise QAError(str(exc)) from exc
    model.save(settings.refusal_model_file, {
        "fitted_at": dt.date.today().isoformat(),
        "benchmark": {"file": Path(args.benchmark).name, "half": "fit", "seed": args.seed},
        "dev_questions": "eval/sets/dev.jsonl"})
    print(f"wrote {settings.refusal_model_file}")
    for name, regime in model.regimes.items():
        weights = ", ".join(f"{k} {v:+.3f}" for k, v in regime.weights.items())
        print(f"  {name}: {weights}; intercept {regime.intercept:+.3f}; bar {regime.bar:+.3f}")
    return 0


def _fit_refusal_suite(args: argparse.Namespace, settings) -> int:
    """Refusal and the label bars refitted on the calibration suite (qa/evaluation/calibration.py), reported leave one out."""
    import datetime as dt
    import tempfile
    from pathlib import Path

    from qa.evaluation import calibration, suite
    from qa.errors import RefusalModelError
    from qa.models.refusal import REGIMES, load_labels, load_model

    corpora = tuple(args.corpora.split(",")) if args.corpora else suite.CORPORA
    wrongly = args.wrongly_refused or settings.refusal_wrongly_refused
    with tempfile.TemporaryDirectory(prefix="qa-fit-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        try:
            groups = calibration.fitting_run(settings, work, corpora, args.seed, say=_say)
        except ValueError as exc:
            raise QAError(str(exc)) from exc
        (work / "fitting-records.json").write_text(json.dumps(groups), encoding="utf-8")
    knobs = (settings.model, wrongly, settings.strong_match_precision, settings.may_help_off_topic)
    try:  # the model shipped now: compared with, and the source of the regimes kept
        before = load_model(settings.refusal_model_file, settings.model)
    except RefusalModelError as exc:
        before = None
        _say(f"not compared with the refusal model shipped now: {exc}")
    kept = tuple(r for r in REGIMES if r not in args.refit_regimes.split(","))
    if kept and before is None:
        raise QAError(f"keeping the {', '.join(kept)} regime needs the shipped refusal model; refit every regime")
    before_bars = load_labels(settings.labels_file, before) if before is not None else None
    # The strong bars' precision target is chosen as --fit-labels chooses it, so either command writes the same bars.
    keeping = dict(keep=before, keep_regimes=kept, keep_bars=before_bars, subject_at_most=settings.strong_match_subject,
                   promise=settings.strong_match_promise)
    loo = calibration.leave_one_out(groups, *knobs, corpora=corpora, **keeping)
    refusal, bars = calibration.fit_both(groups, *knobs, **keeping)
    models = {"the new fit": (refusal, bars)}
    if before is not None:
        models = {"the refusal model and bars shipped before": (before, before_bars), **models}
    corpora_report = calibration.report_under(groups, models, False, settings.strong_match_subject)
    product = calibration.report_under(groups, models, True, settings.strong_match_subject)
    fitted_on = sorted(calibration.fitting_groups(groups))
    today = dt.date.today().isoformat()
    if args.write:  # only once the report says the fit transfers: it replaces what every index answers with
        shipped = json.loads(settings.refusal_model_file.read_text(encoding="utf-8")) if kept else {}
        kept_from = {r: {k: shipped.get(k) for k in ("command", "fitted_at")} for r in kept}
        refusal.save(settings.refusal_model_file, {"fitted_at": today, "suite": {"fitted_on": fitted_on,
                                                                               "seed": args.seed},
                                                   "kept_regimes": kept_from})
        bars.save(settings.labels_file, {"fitted_at": today, "fitted_on": fitted_on,
                                         "strong_match_precision": settings.strong_match_precision,
                                         "strong_match_promise": settings.strong_match_promise,
                                         "may_help_off_topic": settings.may_help_off_topic, "seed": args.seed})
        _say(f"wrote {settings.refusal_model_file} and {settings.labels_file}")
    else:
        _say("the report only: --write replaces qa/fitted/refusal.json and labels.json with this fit")
    if args.json:
        print(json.dumps({"leave_one_out": loo, "corpora": corpora_report, "product": product}, indent=2))
    else:
        print(calibration.format_report(loo, corpora_report, product))
    return 0


def _eval_benchmark(args: argparse.Namespace, settings) -> int:
    from pathlib import Path

    from qa.evaluation import benchmark

    setups = tuple(args.setup.split(","))
    unknown = sorted(set(setups) - set(benchmark.SETUPS))
    if unknown:
        raise QAError(f"unknown setup(s) {', '.join(unknown)}; choose from {', '.join(benchmark.SETUPS)}")
    try:
        bench_sample, results = benchmark.run_benchmark(
            Path(args.benchmark), settings, setups, half=args.half, seed=args.seed, held_out=args.held_out,
            answerable=args.answerable, unanswerable=args.unanswerable, off_topic=args.off_topic,
            baselines=not args.no_baselines, work=Path(args.work) / args.half if args.work else None, say=_say)
    except ValueError as exc:
        raise QAError(str(exc)) from exc
    if args.json:
        print(json.dumps(benchmark.benchmark_json(bench_sample, results), indent=2))
    else:
        print(benchmark.format_benchmark(bench_sample, results))
    return 0


def _eval_suite(args: argparse.Namespace, settings) -> int:
    import tempfile
    from pathlib import Path

    from qa.evaluation import suite

    setups = tuple(s for s in args.setup.split(",") if s in suite.SETUPS) or suite.SETUPS
    corpora = tuple(args.corpora.split(",")) if args.corpora else suite.CORPORA
    try:
        with tempfile.TemporaryDirectory(prefix="qa-suite-") as tmp:
            results = suite.run_suite(settings, Path(args.work) if args.work else Path(tmp), corpora, setups,
                                      baselines=not args.no_baselines, product=not args.no_product, seed=args.seed,
                                      say=_say)
    except ValueError as exc:
        raise QAError(str(exc)) from exc
    from qa.models.refusal import load_model, refusal_key

    key = refusal_key(load_model(settings.refusal_model_file, settings.model))
    groups = suite.record_groups(results)
    precision = suite.choose_precision(groups, key, settings.strong_match_precision, settings.strong_match_promise,
                                       settings.may_help_off_topic, settings.strong_match_subject)
    _say(f"strong match fitted to precision {precision} (the worst corpus left out chose it)")
    loo = suite.leave_one_out(groups, key, precision, settings.may_help_off_topic, settings.strong_match_subject)
    if args.fit_labels:
        import datetime as dt
        fitting = suite.fitting_groups(groups)
        bars = suite.fit_labels(fitting, key, precision, settings.may_help_off_topic, settings.strong_match_subject)
        # The may-help bars the refusal refit wrote for this refusal model stay: it fits them on groups this run
        # lacks (the seed corpus without its example questions, the grown indexes' dev set).
        bars.may_help.update(_shipped_may_help(settings.labels_file, key))
        bars.save(settings.labels_file, {"fitted_at": dt.date.today().isoformat(), "fitted_on": sorted(fitting),
                                         "strong_match_precision": precision,
                                         "strong_match_promise": settings.strong_match_promise,
                                         "may_help_off_topic": settings.may_help_off_topic, "seed": args.seed})
        _say(f"wrote {settings.labels_file}: strong {bars.strong}; may help {bars.may_help}")
    if args.json:
        print(json.dumps({**suite.suite_json(results), "labels_leave_one_out": loo}, indent=2))
    else:
        print(suite.format_suite(results))
        print(suite.format_labels(loo))
    return 0


def _feedback_store(args: argparse.Namespace):
    from qa.feedback.store import FeedbackStore
    settings = _settings(args)
    path = args.db or settings.feedback_db
    return FeedbackStore(path, settings.feedback_comment_chars), settings


def cmd_feedback(args: argparse.Namespace) -> int:
    """The report: unanswered questions (grouped), disliked and liked answers."""
    from qa.feedback import review

    store, settings = _feedback_store(args)
    since = review.parse_date(args.since) if args.since else None
    if not store.path.exists():
        _say(f"no feedback recorded yet: {store.path} does not exist")
    report = review.build_report(store, settings, since, include_promoted=args.all)
    if args.json:
        print(json.dumps(review.report_json(report), ensure_ascii=False, indent=2))
    else:
        print(review.format_report(report))
    return 0


def cmd_feedback_promote(args: argparse.Namespace) -> int:
    from qa.feedback import review

    store, settings = _feedback_store(args)
    promotion = review.promote(store, settings, args.ids, answer=args.answer, article=args.article, say=_say)
    print(f"{len(promotion.added)} example question(s) added, {len(promotion.already)} already in the bank; "
          f"rows {', '.join(str(i) for i in promotion.ids)} marked promoted.")
    if promotion.added:
        print("Rebuild to use them: python -m qa build")
    return 0


def cmd_feedback_delete(args: argparse.Namespace) -> int:
    from qa.feedback import review

    store, _ = _feedback_store(args)
    if not (args.ids or args.before or args.everything):
        raise QAError("say what to delete: row ids, --before DATE, or --everything")
    if not store.path.exists():
        print("nothing to delete: no feedback recorded yet")
        return 0
    before = review.parse_date(args.before) if args.before else None
    count = store.delete(args.ids, before=before, everything=args.everything)
    print(f"deleted {count} row(s) from {store.path}")
    return 0


def _common_options(default=None) -> argparse.ArgumentParser:
    """The options every command takes; default=argparse.SUPPRESS for an action's subparser, so an
    option given before the action ("feedback --db X promote 3") is not reset by the action's default."""
    common = argparse.ArgumentParser(add_help=False, argument_default=default)
    common.add_argument("--corpus", help="corpus folder (default: corpus/ or $QA_CORPUS_DIR)")
    common.add_argument("--index", help="index folder (default: index/ or $QA_INDEX_DIR)")
    common.add_argument("--model", help="sentence-transformers model name or path (default: packaged all-MiniLM-L6-v2)")
    common.add_argument("--tune-epochs", type=int,
                        help="epochs of fine-tuning the model on the question bank at build time; 0 uses the model "
                             "as it is (default 1, or $QA_TUNE_EPOCHS)")
    common.add_argument("--store", choices=("faiss", "milvus"),
                        help="where the vectors are searched: faiss in this process, or a Milvus collection "
                             "(default faiss, or $QA_STORE)")
    common.add_argument("--milvus-uri", help="with --store milvus: a Milvus server's URI (default: a milvus-lite "
                                             "file in the index folder, or $QA_MILVUS_URI)")
    return common


def _feedback_options(default=None) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False, argument_default=default)
    # --feedback-db as on the page; --db is the short old spelling.
    options.add_argument("--feedback-db", "--db", dest="db", help="feedback database (default: data/feedback.sqlite3 or $QA_FEEDBACK_DB)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qa", description="Question answering over the articles in corpus/.")
    common = _common_options()
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", parents=[common], help="build or update the index")
    build.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    build.add_argument("--json", action="store_true",
                       help="print the build report as JSON: per file its title, sections and passages, "
                            "or why it was skipped")
    build.set_defaults(run=cmd_build)

    ask = commands.add_parser("ask", parents=[common], help="answer a question")
    ask.add_argument("question", nargs="*", help="the question")
    ask.add_argument("--history", action="append", help="an earlier question of the conversation (repeatable)")
    mode = ask.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print one JSON object")
    mode.add_argument("--jsonl", action="store_true", help="read JSON lines from stdin, write one answer line each")
    ask.set_defaults(run=cmd_ask)

    ev = commands.add_parser("eval", parents=[common], help="score the engine and baselines on the question set")
    ev.add_argument("--questions", help="labelled questions (default: eval/sets/dev.jsonl)")
    ev.add_argument("--no-baselines", action="store_true", help="score the engine only")
    ev.add_argument("--chunk-sizes", help="comma-separated chunk sizes to compare on temporary indexes")
    ev.add_argument("--fit-refusal", action="store_true",
                    help="refit the refusal model (qa/fitted/refusal.json): with --suite, on the calibration suite "
                         "leave one corpus out, and the label bars with it; with --benchmark, on its fit half")
    ev.add_argument("--refit-regimes", default="plain,examples",
                    help="--suite --fit-refusal: the refusal regimes refitted; the others are kept as shipped")
    ev.add_argument("--write", action="store_true",
                    help="--suite --fit-refusal: write the fit to qa/fitted/ (without it, only the report)")
    ev.add_argument("--benchmark", metavar="FILE",
                    help="score on a SQuAD-format benchmark instead (e.g. ../shared/benchmarks/squad2-dev-half.json), "
                         "built fresh and grown (beside corpus/) with the baselines")
    ev.add_argument("--suite", action="store_true",
                    help="the calibration suite: SQuAD, MedQuAD and saved web pages, each fresh and grown, with the "
                         "baselines and the product's sets (qa/evaluation/suite.py); --corpora and --setup choose, --work keeps")
    ev.add_argument("--corpora", help="suite: comma-separated corpora (default: squad,medquad,web)")
    ev.add_argument("--no-product", action="store_true", help="suite: skip the product's six question sets")
    ev.add_argument("--fit-labels", action="store_true",
                    help="suite: fit the labels' bars (strong match, may help) on every suite corpus and the dev set "
                         "and write qa/fitted/labels.json")
    ev.add_argument("--setup", default="fresh,grown,plain",
                    help="benchmark: comma-separated setups: fresh (its articles alone), grown (beside the product's "
                         "corpus), plain (the product's articles without example questions or tuning), product "
                         "(default fresh,grown,plain)")
    ev.add_argument("--half", choices=("fit", "report", "all"), default="report",
                    help="benchmark: which fixed half of its articles (learn on fit, report on report)")
    ev.add_argument("--seed", type=int, default=0, help="benchmark: the seed of the halves and samples")
    ev.add_argument("--held-out", type=int, default=2, help="benchmark: articles left out of the corpus")
    ev.add_argument("--answerable", type=int, default=240, help="benchmark: answerable questions asked")
    ev.add_argument("--unanswerable", type=int, default=90, help="benchmark: its unanswerable questions asked")
    ev.add_argument("--off-topic", type=int, default=80, help="benchmark: questions about the held-out articles")
    ev.add_argument("--wrongly-refused", type=float, default=None,
                    help="--fit-refusal: the share of each fitting group's answerable questions the bar may refuse "
                         "(default 0.07, qa.evaluation.benchmark.WRONGLY_REFUSED)")
    ev.add_argument("--work", metavar="DIR",
                    help="benchmark: keep its corpora and indexes in DIR, reused by later runs (default: a temporary "
                         "folder)")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("-v", "--verbose", action="store_true", help="list the questions the engine got wrong")
    ev.set_defaults(run=cmd_eval)

    fb = commands.add_parser("feedback", parents=[common, _feedback_options()],
                             help="what people voted and asked: the report; promote, delete")
    fb.add_argument("--since", help="only feedback from this date on (YYYY-MM-DD, UTC)")
    fb.add_argument("--json", action="store_true", help="print the report as one JSON object")
    fb.add_argument("--all", action="store_true", help="include rows already promoted to example questions")
    fb.set_defaults(run=cmd_feedback)
    actions = fb.add_subparsers(dest="action")
    action_options = [_common_options(argparse.SUPPRESS), _feedback_options(argparse.SUPPRESS)]
    promote = actions.add_parser("promote", parents=action_options,
                                 help="add feedback rows' questions to the question bank (corpus/questions/)")
    promote.add_argument("ids", nargs="+", type=int, metavar="ID", help="row ids from the report")
    promote.add_argument("--answer", help="the sentence that answers them, copied from the article "
                                          "(needed unless the row is a liked answer)")
    promote.add_argument("--article", help="the article's file name, when the sentence is in several")
    promote.set_defaults(run=cmd_feedback_promote)
    delete = actions.add_parser("delete", parents=action_options, help="delete feedback rows")
    delete.add_argument("ids", nargs="*", type=int, metavar="ID")
    delete.add_argument("--before", help="delete every row older than this date (YYYY-MM-DD, UTC)")
    delete.add_argument("--everything", action="store_true", help="delete every row")
    delete.set_defaults(run=cmd_feedback_delete)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Model loading chatter (progress bars of weights) is noise for a user of the CLI, and a bar
    # written to a file or a pipe is a line of control characters.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return args.run(args)
    except QAError as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _say("interrupted; the previous index, if any, is unchanged")
        return 130
