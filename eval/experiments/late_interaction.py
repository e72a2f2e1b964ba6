"""Experiment (issue 24): does reading question and sentence together, token by token, pick better answer sentences?

Not part of the product. The answer sentence is chosen by pooled cosines plus small
bonuses (qa/answering/answer.py); on the web pages the wrong choice is mostly a
sentence that restates its section's subject. This scores, on the suite's built
indexes (as eval/experiments/suite_lab.py, no rebuild), two query-time additions
to each candidate sentence's score:

- late interaction ("maxsim"): the packaged all-MiniLM-L6-v2's contextual token
  vectors (before mean pooling, unit length), for each question token the best
  cosine with any token of the sentence, averaged over the question's tokens
  (special tokens and punctuation left out; "all": every word piece weighs 1,
  "content": only pieces of the question's content words, "idf": those weighted by
  the index's idf of the word); "sym" also averages the sentence's tokens against
  the question's. Added as weight * score, or weight * (score - the candidates'
  mean) ("centred"), or in place of the cosine ("replace");
- a wider lexical answer-type check ("types"): how long / how much / when / what to
  do -> durations, quantities with units, times, imperatives, on top of the product's.

    python eval/experiments/late_interaction.py --work /tmp/suite --groups webdev/fresh,webdev/grown

Token vectors come from sentence-transformers on torch (output_value="token_embeddings"),
kept per text for the run; one line per group and variant as suite_lab prints them.
The product's own token match (Settings.token_match_weight) is turned off here, so the
variants are measured against the answer choice they were first measured against.
What it found, and the variant that shipped ("focus2 idf 1.0", qa/answering/token_match.py):
docs/QUALITY.md, "Token match".
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite_lab  # noqa: E402
from qa.answering import answer as answer_module  # noqa: E402
from qa.evaluation import suite  # noqa: E402
from qa.evaluation.benchmark import OFF_TOPIC  # noqa: E402
from qa.evaluation.evaluate import run_engine, score  # noqa: E402
from qa.models.embedding import resolve_model  # noqa: E402
from qa.reading.text import STOPWORDS, content_terms  # noqa: E402
from qa.serving import engine as engine_module  # noqa: E402
from qa.settings import Settings  # noqa: E402

_PUNCT = re.compile(r"^\W+$")


class TokenVectors:
    """text -> (unit token vectors without [CLS]/[SEP], the word each token belongs to), kept for the run."""

    def __init__(self, model: str = "all-MiniLM-L6-v2") -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        torch.set_num_threads(1)
        self.model = SentenceTransformer(resolve_model(model), device="cpu")
        self.tokenizer = self.model.tokenizer
        self.kept: dict[str, tuple[np.ndarray, list[str]]] = {}

    def fill(self, texts: list[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.kept))
        if not missing:
            return
        outputs = self.model.encode(missing, output_value="token_embeddings", batch_size=32,
                                    convert_to_numpy=False, show_progress_bar=False)
        for text, vectors in zip(missing, outputs):
            encoding = self.tokenizer(text, truncation=True, max_length=self.model.max_seq_length)
            ids = encoding["input_ids"]
            tokens = self.tokenizer.convert_ids_to_tokens(ids)
            word_ids = encoding.word_ids()
            offsets = self.tokenizer(text, truncation=True, max_length=self.model.max_seq_length,
                                     return_offsets_mapping=True)["offset_mapping"]
            spans: dict[int, list[int]] = {}
            for position, word in enumerate(word_ids):
                if word is not None:
                    start, end = offsets[position]
                    spans.setdefault(word, [start, end])[1] = end
            vectors = vectors.float().numpy()[:len(ids)]
            keep, token_words = [], []
            for position, (token, word) in enumerate(zip(tokens, word_ids)):
                if word is None or _PUNCT.match(token):
                    continue
                keep.append(position)
                start, end = spans[word]
                token_words.append(text[start:end].lower())
            matrix = vectors[keep] if keep else np.zeros((0, vectors.shape[1]), np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self.kept[text] = (matrix / np.maximum(norms, 1e-9), token_words)

    def get(self, text: str) -> tuple[np.ndarray, list[str]]:
        self.fill([text])
        return self.kept[text]


def question_weights(token_words: list[str], mode: str, idf: dict, rarest: float) -> np.ndarray:
    if mode == "all":
        return np.ones(len(token_words))
    weights = []
    for word in token_words:
        terms = content_terms(word) if word not in STOPWORDS else []
        if not terms:
            weights.append(0.0)
        else:
            weights.append(1.0 if mode == "content" else idf.get(terms[0], rarest))
    weights = np.asarray(weights, dtype=np.float64)
    return weights if weights.sum() > 0 else np.ones(len(token_words))


def maxsim(question: tuple[np.ndarray, np.ndarray], sentence: np.ndarray, symmetric: bool) -> float:
    q, weights = question
    if len(q) == 0 or len(sentence) == 0:
        return 0.0
    sims = q @ sentence.T
    forward = float((sims.max(axis=1) * weights).sum() / weights.sum())
    if not symmetric:
        return forward
    return 0.5 * (forward + float(sims.max(axis=0).mean()))


# The wider answer-type check: (what the question asks, how a sentence shows it).
_UNITS = (r"\b\d+(?:\.\d+)?\s*(?:%|percent|mg|g|kg|ml|l|mcg|µg|lbs?|pounds?|inch(?:es)?|cm|mm|kcal|calories|"
          r"units?|doses?|times|milligrams?|grams?|litres?|liters?)\b|\b\d+(?:\.\d+)?%")
_DURATION = (r"\b(?:\d+|a few|several|one|two|three|four|five|six|seven|eight|ten|twelve|a|an)[- ]"
             r"(?:to[- ]\d+[- ])?(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b")
_IMPERATIVE_START = re.compile(r"^(?:(?:if|when|after|before|once|while)\b[^,]*,\s*)?(?:please\s+)?(?:call|give|get|"
                               r"seek|stay|keep|make|do|don't|do not|never|always|avoid|try|use|take|check|place|"
                               r"put|turn|tell|ask|remove|start|stop|wait|go|lay|roll|tilt|press|push|remember|"
                               r"consider|talk|see|eat|drink|limit|include|choose|follow|wear|contact|monitor|"
                               r"measure|record)\b", re.I)
_ADVICE = re.compile(r"\b(?:should|must|need to|needs to|it is (?:important|best|recommended) to|recommended|"
                     r"advised|you can|you may want to|be sure to|make sure)\b", re.I)
_WIDER_TYPES = (
    ("duration", re.compile(r"\bhow long\b|\bhow much time\b|\bfor how long\b", re.I),
     lambda s: re.search(_DURATION, s, re.I) is not None),
    ("quantity", re.compile(r"\bhow (?:many|much)\b|\bwhat (?:dose|dosage|amount|percentage|number|size|level)\b|"
                            r"\bhow (?:big|large|high|low|accurate|often)\b", re.I),
     lambda s: re.search(_UNITS, s, re.I) is not None or re.search(r"\d", s) is not None),
    ("time", re.compile(r"\bwhen\b|\bwhat (?:year|age|time)\b|\bat what age\b", re.I),
     lambda s: re.search(r"\b(?:1[89]|20)\d\d\b|\b(?:age[sd]?|years? old|before|after|during|within|until|"
                         r"as soon as|once|daily|weekly|morning|night|hours?|days?|weeks?)\b", s, re.I) is not None),
    ("action", re.compile(r"\bwhat (?:should|can|do|must) (?:i|you|we|they|he|she)\b|\bwhat to do\b|"
                          r"\bhow (?:do|can|should) (?:i|you|we)\b|\bshould i\b", re.I),
     lambda s: _IMPERATIVE_START.search(s.strip()) is not None or _ADVICE.search(s) is not None),
)


def wider_type(question: str):
    for name, asks, shows in _WIDER_TYPES:
        if asks.search(question):
            return name, shows
    return None


class Variant:
    def __init__(self, name: str, weight: float = 0.0, mode: str = "all", symmetric: bool = False,
                 combine: str = "add", types: float = 0.0, focus: float = 0.0) -> None:
        self.name, self.weight, self.mode, self.symmetric, self.focus = name, weight, mode, symmetric, focus
        self.combine, self.types = combine, types


VARIANTS = {
    "main": Variant("main"),
    "maxsim all 0.5": Variant("maxsim all 0.5", 0.5, "all"),
    "maxsim all 1.0": Variant("maxsim all 1.0", 1.0, "all"),
    "maxsim content 0.5": Variant("maxsim content 0.5", 0.5, "content"),
    "maxsim content 1.0": Variant("maxsim content 1.0", 1.0, "content"),
    "maxsim idf 0.5": Variant("maxsim idf 0.5", 0.5, "idf"),
    "maxsim idf 1.0": Variant("maxsim idf 1.0", 1.0, "idf"),
    "maxsim idf 2.0": Variant("maxsim idf 2.0", 2.0, "idf"),
    "maxsim sym all 1.0": Variant("maxsim sym all 1.0", 1.0, "all", True),
    "maxsim sym idf 1.0": Variant("maxsim sym idf 1.0", 1.0, "idf", True),
    "maxsim idf replace": Variant("maxsim idf replace", 1.0, "idf", combine="replace"),
    "maxsim all replace": Variant("maxsim all replace", 1.0, "all", combine="replace"),
    "maxsim all 2.0": Variant("maxsim all 2.0", 2.0, "all"),
    "maxsim all 4.0": Variant("maxsim all 4.0", 4.0, "all"),
    "maxsim idf 4.0": Variant("maxsim idf 4.0", 4.0, "idf"),
    "focus all 1.0": Variant("focus all 1.0", 1.0, "all", focus=1.0),
    "focus all 2.0": Variant("focus all 2.0", 2.0, "all", focus=1.0),
    "focus idf 1.0": Variant("focus idf 1.0", 1.0, "idf", focus=1.0),
    "focus idf 2.0": Variant("focus idf 2.0", 2.0, "idf", focus=1.0),
    "focus2 idf 2.0": Variant("focus2 idf 2.0", 2.0, "idf", focus=2.0),
    "focus2 idf 1.0": Variant("focus2 idf 1.0", 1.0, "idf", focus=2.0),
    "focus2 idf 3.0": Variant("focus2 idf 3.0", 3.0, "idf", focus=2.0),
    "focus3 idf 2.0": Variant("focus3 idf 2.0", 2.0, "idf", focus=3.0),
    "focus3 idf 3.0": Variant("focus3 idf 3.0", 3.0, "idf", focus=3.0),
    "focus2 all 2.0": Variant("focus2 all 2.0", 2.0, "all", focus=2.0),
    "focus2 content 2.0": Variant("focus2 content 2.0", 2.0, "content", focus=2.0),
    "types 0.05": Variant("types 0.05", types=0.05),
    "types 0.1": Variant("types 0.1", types=0.1),
    "types 0.2": Variant("types 0.2", types=0.2),
    "maxsim idf 1.0 + types 0.1": Variant("maxsim idf 1.0 + types 0.1", 1.0, "idf", types=0.1),
}


class Patch:
    """Adds the variant's scores to answer choice: answer() is wrapped to know the question and
    its candidates, _shape_bonus (called once per candidate sentence) returns the extra score."""

    def __init__(self, tokens: TokenVectors) -> None:
        self.tokens = tokens
        self.variant = VARIANTS["main"]
        self.state: dict = {}
        self.original_answer = answer_module.answer
        self.original_shape = answer_module._shape_bonus
        self.cosines: dict = {}
        engine_module.answer = self.answer
        answer_module._shape_bonus = self.shape_bonus

    def answer(self, index, question, query, query_vector, hits, settings, *args, **kwargs):
        variant = self.variant
        self.state = {}
        if variant.weight:
            sentences = [index.sentences[i] for hit in hits[:settings.answer_passages]
                         for i in index.chunk_sentence_ids[hit.chunk]]
            self.tokens.fill([question] + sentences)
            q_vectors, q_words = self.tokens.get(question)
            weights = question_weights(q_words, variant.mode, index.idf, index.max_idf)
            scores = {}
            for hit in hits[:settings.answer_passages]:
                chunk = index.chunks[hit.chunk]
                w = weights
                if variant.focus:
                    # the question's tokens the passage's subject (title, section) already matches weigh less
                    subject = f"{chunk.title}. {chunk.section}"
                    self.tokens.fill([subject])
                    covered = (q_vectors @ self.tokens.get(subject)[0].T).max(axis=1) if len(q_vectors) else 0
                    w = weights * np.clip(1 - covered, 0, None) ** variant.focus
                    if w.sum() <= 0:
                        w = weights
                for i in index.chunk_sentence_ids[hit.chunk]:
                    s = index.sentences[i]
                    scores.setdefault(s, maxsim((q_vectors, w), self.tokens.get(s)[0], variant.symmetric))
            mean = float(np.mean(list(scores.values()))) if scores else 0.0
            cos = {}
            if variant.combine == "replace":
                for hit in hits[:settings.answer_passages]:
                    ids = index.chunk_sentence_ids[hit.chunk]
                    if ids:
                        for i, c in zip(ids, index.answer_vectors[ids] @ query_vector):
                            cos[index.sentences[i]] = float(c)
            self.state = {"scores": scores, "mean": mean, "cos": cos}
        if variant.types:
            self.state["type"] = wider_type(question)
        return self.original_answer(index, question, query, query_vector, hits, settings, *args, **kwargs)

    def shape_bonus(self, sentence, weights, settings):
        bonus = self.original_shape(sentence, weights, settings)
        variant = self.variant
        scores = self.state.get("scores")
        if scores is not None and sentence in scores:
            value = scores[sentence]
            if variant.combine == "replace":
                bonus += value - self.state["cos"].get(sentence, 0.0)
            elif variant.combine == "centred":
                bonus += variant.weight * (value - self.state["mean"])
            else:
                bonus += variant.weight * value
        kind = self.state.get("type")
        if kind is not None and kind[1](sentence):
            bonus += variant.types
        return bonus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--groups", default=",".join(suite_lab.DEFAULT_GROUPS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="names from VARIANTS, joined by ';'")
    parser.add_argument("--token-model", choices=("packaged", "index"), default="packaged",
                        help="token vectors of the packaged model, or of each index's own question model (tuned)")
    parser.add_argument("--misses", default="", help="a group whose wrong answers to print per variant")
    args = parser.parse_args()
    settings = Settings.from_env().replace(token_match_weight=0)  # main's answer choice before the token match shipped
    opened = suite_lab.open_groups(settings, Path(args.work), args.groups.split(","))
    patch = Patch(TokenVectors())
    base = patch.tokens
    base.model_name = resolve_model("all-MiniLM-L6-v2")
    models: dict = {}
    names = args.variants.split(";") if ";" in args.variants or args.variants in VARIANTS else args.variants.split(",")
    for name in names:
        patch.variant = VARIANTS[name]
        print(name, flush=True)
        for group, (engine, questions, corpus) in opened.items():
            engine.forget()
            if args.token_model == "index":
                name = engine.embedder.name
                patch.tokens = models.setdefault(name, patch.tokens if name == base.model_name else TokenVectors(name))
            scores = score("engine", questions, run_engine(engine, questions))
            off = suite._by_kind(corpus, scores).get("refused " + OFF_TOPIC, float("nan")) if corpus else float("nan")
            print(f"  {group:<16} hit@1 {scores.hit1:.3f}  MRR {scores.mrr:.3f}  answers {scores.answer_accuracy:.3f}"
                  f"  wrongly refused {scores.refused_answerable:.3f}  off-topic refused {off:.2f}", flush=True)
            if group == args.misses:
                for miss in scores.misses:
                    print("     ", miss[:200])


if __name__ == "__main__":
    main()
