"""Stage 3a: the question bank -> a copy of the embedding model fine-tuned on it.

Owns: turning the bank's (example question, answer sentence) pairs into a
fine-tuned copy of the model, keyed by everything that decides its weights,
and keeping those copies on disk so a rebuild with the same bank and
settings trains nothing.

Why: the example questions were written from the articles alone, the way
people ask ("will narcan wake someone up who did too much k"), each paired
with the sentence that answers it. Taught on those pairs, MiniLM learns the
articles' vocabulary as people use it, and questions it has never seen are
answered better than with the model as it ships, on every question set of
eval/sets/ (docs/history.md, 2026-11-22, fifth session).

How: in-batch negatives (sentence-transformers' MultipleNegativesRankingLoss,
scale 20), both ways (question -> answer and answer -> question); a batch
never holds two pairs with the same answer, which would be false negatives.
AdamW, 10% linear warm-up then linear decay, batch 32, plain torch on the
CPU. Seeded, on a fixed number of threads: the same pairs give the same
weights, so the refusal weights fitted to them stay valid (a test checks it).
The packaged model's layout trains with transformers alone and activation
checkpointing (qa/models/plain_model.py): the weights sentence-transformers
would train, bit for bit, in a fraction of the memory; any other layout
trains through sentence-transformers.

After a promote: a bank that only gained pairs since the model the live
index uses was trained (the same training numbers, no pair changed or
removed) continues that model instead of training from the packaged one
again, when the pairs gained since its line's last full training are at
most Settings.tune_continue_share of that training's pairs. Each step
holds up to half a batch of the new pairs, filled up with earlier pairs
(a seeded draw) so the model keeps its in-batch negatives and what it
learnt; at half the full training's peak rate (about its mean), without
warm-up or decay. One new question is one step instead of the full
training's batches (docs/BENCHMARKS.md, build). More new pairs, or a pair
changed or removed, train from the packaged model again. So the weights
depend on the order the bank grew in: a model continued on a bank is not
the model a fresh training of that bank gives (quality of both:
docs/BENCHMARKS.md, build). A fresh build (no live index) always trains in
full, bit for bit as before.

Where: `<tuned_dir>/<key>/`, a sentence-transformers model folder (a full
copy of the model), written beside and renamed into place, so a killed
training leaves nothing half-written under the key, with `tuning.json`:
the pairs it was trained on, its training numbers, the model it
continued (if any) and the pairs of its line's last full training. `key`
hashes the base model, the pairs, the training numbers and the torch and
sentence-transformers versions; a continued model's key hashes the key it
continued and the pairs it added.

Limits: a bank change retrains (its cost: docs/BENCHMARKS.md, build) and
so re-embeds every text; an article change alone does neither. Training
uses the pairs as written, whether or not their answer is still in the
article (qa/models/question_bank.py warns about those).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qa.models.embedding import resolve_model
from qa.errors import ModelError
from qa.files import publish_folder, recipe_key, temp_folder
from qa.models import reference
from qa.models.plain_model import PlainModel, plain_layout
from qa.models.question_bank import BankQuestion
from qa.settings import Settings

TUNED_FOLDER = "tuned"  # inside the index folder, unless Settings.tuned_dir says otherwise
RECORD_FILE = reference.TRAINING_RECORD  # in a tuned model's folder: what it was trained on (module docstring)
RECORD_FORMAT = 1
# Names how a model is continued; change it with the continuation's rules, so their models get other keys.
CONTINUE_METHOD = "half-batches-of-new-pairs, half-peak-rate, v1"


@dataclass(frozen=True)
class TuningPlan:
    """What a build would train: the pairs and the key naming the result.

    `parent`: the key of the tuned model this one continues on `added` (the pairs it was not trained on);
    None trains from the packaged model. `from_scratch_pairs`: the pairs of this line's last full training."""

    key: str
    pairs: tuple[tuple[str, str], ...]
    epochs: int
    parent: str | None = None
    added: tuple[tuple[str, str], ...] = ()
    from_scratch_pairs: int = 0
    numbers: dict | None = None  # what decides the weights besides the pairs (the recipe less its pairs)


def tuned_root(settings: Settings) -> Path:
    return settings.tuned_dir if settings.tuned_dir is not None else settings.index_dir / TUNED_FOLDER


def exports_root(settings: Settings) -> Path:
    """Where the ONNX exports are kept (qa/models/export.py writes them): inside the tuned models' folder. Here,
    not in the exporter, so that answering finds an export without importing what makes one."""
    return tuned_root(settings) / reference.EXPORTS_FOLDER


def training_pairs(entries: list[BankQuestion]) -> tuple[tuple[str, str], ...]:
    """(question, answer) pairs, each once, in a fixed order: the seeded shuffle starts from it."""
    return tuple(sorted({(e.question, e.answer) for e in entries}))


def plan(settings: Settings, entries: list[BankQuestion], live_key: str | None = None) -> TuningPlan | None:
    """The training this bank calls for, or None (tuning off, or too few examples to be worth a model copy).

    `live_key`: the tuned model the live index was embedded with; a bank that only grew a little since it
    was trained continues it (the module docstring says when)."""
    pairs = training_pairs(entries)
    if settings.tune_epochs == 0 or len(pairs) < settings.tune_min_pairs:
        return None
    numbers = {
        "base": settings.model, "base_location": resolve_model(settings.model),
        "epochs": settings.tune_epochs, "learning_rate": settings.tune_learning_rate, "batch": settings.tune_batch,
        "scale": settings.tune_scale, "warm_up": settings.tune_warm_up, "weight_decay": settings.tune_weight_decay,
        "seed": settings.tune_seed, "threads": settings.threads,
        "versions": [_version("torch"), _version("sentence-transformers")],
    }
    full = TuningPlan(recipe_key({**numbers, "pairs": pairs}), pairs, settings.tune_epochs,
                      from_scratch_pairs=len(pairs), numbers=numbers)
    record = _record(settings, live_key) if live_key and settings.tune_continue_share > 0 else None
    if record is None or record["numbers"] != json.loads(json.dumps(numbers)):
        return full
    earlier = {tuple(pair) for pair in record["pairs"]}
    added = tuple(pair for pair in pairs if pair not in earlier)
    if len(earlier) + len(added) != len(pairs):  # a pair was changed or removed: it cannot be unlearnt
        return full
    if not added:  # the same bank: the same model
        return TuningPlan(live_key, pairs, settings.tune_epochs, from_scratch_pairs=record["from_scratch_pairs"],
                          numbers=numbers)
    grown = len(pairs) - record["from_scratch_pairs"]
    if grown > settings.tune_continue_share * record["from_scratch_pairs"]:
        return full
    key = recipe_key({"continues": live_key, "added": added, "method": CONTINUE_METHOD})
    return TuningPlan(key, pairs, settings.tune_epochs, parent=live_key, added=added,
                      from_scratch_pairs=record["from_scratch_pairs"], numbers=numbers)


def _record(settings: Settings, key: str) -> dict | None:
    """The tuning.json of the tuned model `key`, if it is on disk whole and of this format."""
    if not is_trained(settings, key):
        return None
    try:
        record = json.loads((model_dir(settings, key) / RECORD_FILE).read_text(encoding="utf-8"))
        if record.get("format") != RECORD_FORMAT:
            return None
        record["pairs"] = [(str(q), str(a)) for q, a in record["pairs"]]
        int(record["from_scratch_pairs"]), dict(record["numbers"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record


def model_dir(settings: Settings, key: str) -> Path:
    return tuned_root(settings) / key


def is_trained(settings: Settings, key: str) -> bool:
    folder = model_dir(settings, key)
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def ensure_trained(settings: Settings, tuning: TuningPlan, say: Callable[[str], None],
                   on_step: Callable[[int, int], None] | None = None) -> tuple[Path, float]:
    """The tuned model's folder, training it first unless it is on disk; also the seconds spent training.

    `on_step(done, total)` is called after every training step."""
    folder = model_dir(settings, tuning.key)
    if is_trained(settings, tuning.key):
        return folder, 0.0
    started = time.perf_counter()
    root = tuned_root(settings)
    tmp = temp_folder(root, tuning.key)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tuning.parent is not None:
            say(f"fine-tuning the live index's model ({tuning.parent}) on {len(tuning.added)} new example "
                f"question(s) ({tuning.epochs} epoch(s); in full again once the bank has grown by more than "
                f"{settings.tune_continue_share:.0%} of the {tuning.from_scratch_pairs} it was first trained on)")
            earlier = [pair for pair in tuning.pairs if pair not in set(tuning.added)]
            continue_tuning(str(model_dir(settings, tuning.parent)), list(tuning.added), earlier, tuning.epochs,
                            settings.threads, tmp, on_step=on_step, settings=settings)
        else:
            say(f"fine-tuning {settings.model} on {len(tuning.pairs)} example questions "
                f"({tuning.epochs} epoch(s); once per question bank)")
            fine_tune(resolve_model(settings.model), list(tuning.pairs), tuning.epochs, settings.threads, tmp,
                      on_step=on_step, settings=settings)
        (tmp / RECORD_FILE).write_text(json.dumps({
            "format": RECORD_FORMAT, "pairs": tuning.pairs, "numbers": tuning.numbers, "parent": tuning.parent,
            "from_scratch_pairs": tuning.from_scratch_pairs}, ensure_ascii=False) + "\n", encoding="utf-8")
        # Another build finishing the same model first is fine.
        publish_folder(tmp, folder, already_there=lambda: is_trained(settings, tuning.key))
    except OSError as exc:
        raise ModelError(f"cannot write the fine-tuned model in {root}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, time.perf_counter() - started


def prune(settings: Settings, keep: set[str]) -> None:
    """Delete tuned models (and leftovers of killed trainings) no kept index generation uses.

    Only in the index's own folder: a shared `tuned_dir` is a cache its owner manages.
    """
    if settings.tuned_dir is not None:
        return
    root = tuned_root(settings)
    if not root.is_dir():
        return
    for path in root.iterdir():
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def batches(pairs: list[tuple[str, str]], rng: random.Random, size: int) -> list[list[tuple[str, str]]]:
    """Shuffled batches in which every answer appears once (a second one would be a false negative)."""
    waiting = pairs[:]
    rng.shuffle(waiting)
    out = []
    while waiting:
        batch, answers, later = [], set(), []
        for pair in waiting:
            if len(batch) < size and pair[1] not in answers:
                batch.append(pair)
                answers.add(pair[1])
            else:
                later.append(pair)
        if len(batch) > 1:
            out.append(batch)
        waiting = later if len(batch) > 1 else []
    return out


def fine_tune(base_location: str, pairs: list[tuple[str, str]], epochs: int, threads: int, out: Path,
              seed: int | None = None, on_step: Callable[[int, int], None] | None = None,
              settings: Settings | None = None) -> None:
    """Train a copy of the model at `base_location` on (question, answer) pairs and save it to `out`, with
    the training numbers of `settings` (the defaults when None); `seed` overrides its tune_seed."""
    numbers = settings or Settings()
    seed = numbers.tune_seed if seed is None else seed
    import torch

    torch.set_num_threads(threads)
    rng = random.Random(seed)
    with torch.random.fork_rng(devices=[]):  # a build inside the app leaves the process's RNG as it was
        torch.manual_seed(seed)
        model = _trainable(base_location)
        model.train()
        optimiser = torch.optim.AdamW(model.module.parameters(), lr=numbers.tune_learning_rate,
                                      weight_decay=numbers.tune_weight_decay)
        schedule = [batches(pairs, rng, numbers.tune_batch) for _ in range(epochs)]
        total = sum(len(epoch) for epoch in schedule)
        warm_up = max(1, int(total * numbers.tune_warm_up))
        _train(model, optimiser, schedule, numbers.tune_scale, on_step,
               rate=lambda step: numbers.tune_learning_rate * min(
                   step / warm_up, max(0.0, (total - step) / max(1, total - warm_up))))
        model.train(False)
        model.save(out)


def continued_batches(added: list[tuple[str, str]], earlier: list[tuple[str, str]], rng: random.Random,
                      size: int) -> list[list[tuple[str, str]]]:
    """Batches of up to half `size` new pairs each, filled up to `size` with earlier pairs (a different
    stretch of a shuffle of them in each batch); every answer at most once in a batch, as in `batches`."""
    waiting, fill = added[:], earlier[:]
    rng.shuffle(waiting)
    rng.shuffle(fill)
    out, cursor = [], 0
    while waiting:
        batch, answers, later = [], set(), []
        for pair in waiting:
            if len(batch) < max(1, size // 2) and pair[1] not in answers:
                batch.append(pair)
                answers.add(pair[1])
            else:
                later.append(pair)
        waiting = later
        for _ in range(len(fill)):
            if len(batch) >= size:
                break
            pair = fill[cursor % len(fill)]
            cursor += 1
            if pair[1] not in answers:
                batch.append(pair)
                answers.add(pair[1])
        if len(batch) > 1:
            out.append(batch)
    return out


def continue_tuning(location: str, added: list[tuple[str, str]], earlier: list[tuple[str, str]], epochs: int,
                    threads: int, out: Path, on_step: Callable[[int, int], None] | None = None,
                    settings: Settings | None = None) -> None:
    """Train the tuned model at `location` further on the pairs `added` to its bank (`earlier`: the pairs it
    was trained on, the batches' filling) and save it to `out` (the module docstring says how)."""
    numbers = settings or Settings()
    import torch

    torch.set_num_threads(threads)
    rng = random.Random(numbers.tune_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(numbers.tune_seed)
        model = _trainable(location)
        model.train()
        rate = numbers.tune_learning_rate / 2  # the mean of a full training's warm-up and linear decay
        optimiser = torch.optim.AdamW(model.module.parameters(), lr=rate, weight_decay=numbers.tune_weight_decay)
        schedule = [continued_batches(added, earlier, rng, numbers.tune_batch) for _ in range(epochs)]
        _train(model, optimiser, schedule, numbers.tune_scale, on_step, rate=lambda step: rate)
        model.train(False)
        model.save(out)


def _train(model, optimiser, schedule: list[list[list[tuple[str, str]]]], scale: float,
           on_step: Callable[[int, int], None] | None, rate: Callable[[int], float]) -> None:
    """One optimiser step per batch: in-batch negatives both ways; `rate(step)` is the learning rate after it."""
    import torch

    total = sum(len(epoch) for epoch in schedule)

    def embed(texts: list[str]) -> "torch.Tensor":
        return torch.nn.functional.normalize(model.vectors(texts), dim=-1)

    step = 0
    for epoch in schedule:
        for batch in epoch:
            questions, answers = (list(side) for side in zip(*batch))
            logits = embed(questions) @ embed(answers).T * scale
            labels = torch.arange(len(batch))
            loss = (torch.nn.functional.cross_entropy(logits, labels)
                    + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            for group in optimiser.param_groups:
                group["lr"] = rate(step)
            if on_step is not None:
                on_step(step, total)


class _SentenceTransformersModel:
    """A model of any other layout, trained through sentence-transformers itself (PlainModel's interface)."""

    def __init__(self, location: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.module = SentenceTransformer(location, device="cpu")

    def train(self, training: bool = True) -> None:
        self.module.train(training)

    def vectors(self, texts: list[str]):
        preprocess = getattr(self.module, "preprocess", None) or self.module.tokenize  # renamed in version 6
        return self.module(preprocess(texts))["sentence_embedding"]

    def save(self, out: Path) -> None:
        self.module.save(str(out))


def _trainable(location: str):
    """The model at `location` ready to train: with transformers alone when it has the plain layout (the
    packaged model does), else with sentence-transformers (qa/models/plain_model.py says why)."""
    layout = plain_layout(Path(location)) if Path(location).is_dir() else None
    try:
        return PlainModel(location, *layout) if layout else _SentenceTransformersModel(location)
    except Exception as exc:  # transformers and sentence-transformers raise many kinds
        raise ModelError(f"cannot load embedding model {location} to fine-tune it: {exc}") from exc


def _version(package: str) -> str:
    from importlib import metadata  # here: importing it costs a cold `qa ask`, which never tunes

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


__all__ = ["TuningPlan", "training_pairs", "plan", "ensure_trained", "model_dir", "is_trained", "prune", "tuned_root",
           "exports_root", "fine_tune", "batches", "continue_tuning", "continued_batches", "RECORD_FILE"]
