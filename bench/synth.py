"""A deterministic synthetic corpus: the real articles' sentences recombined into many articles.

    python -m bench.synth --chunks 10000 --out /tmp/synth [--seed 0]

Nothing is downloaded. The sentences, list items, section headings and titles
of corpus/ (read with the product's own loader, so they are already clean)
are drawn with a seeded `random.Random` into Markdown articles of 3-7
sections, each of 1-3 paragraphs (2-5 sentences) or a bullet list under a
lead-in. Each drawn sentence gets one lower-case word replaced by another
word of the corpus vocabulary, so sentences are (almost all) unique, as they
would be in a real corpus of that size: the build embeds unique sentences,
and the answer stage scores them, so a corpus of repeats would flatter both.

Articles are generated until the product's own chunker (qa.reading.chunking, default
settings) counts the requested number of chunks, so `--chunks` is exact to
within one article (about ten chunks).

Limits: the vocabulary is the five articles' (about 3k words), so BM25
posting lists are longer than a real corpus of the same size would have
(lexical timings are, if anything, pessimistic); the text is on-topic
gibberish, so retrieval quality on it means nothing: use it for speed and size.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent

from qa.reading.chunking import chunk_article  # noqa: E402
from qa.reading.corpus import load_corpus, parse_article  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.reading.text import STOPWORDS, split_sentences, words  # noqa: E402


@dataclass
class Pools:
    sentences: list[str]
    items: list[str]
    leads: list[str]
    headings: list[str]
    titles: list[str]
    vocabulary: list[str]


def pools(corpus_dir: Path = ROOT / "corpus", settings: Settings | None = None) -> Pools:
    corpus = load_corpus(corpus_dir, settings or Settings())
    sentences, items, leads, headings, titles, vocab = [], [], [], [], [], set()
    for article in corpus.articles:
        titles.append(article.title)
        for section in article.sections:
            headings.append(section.heading)
            for block in section.blocks:
                if block.is_list:
                    if block.lead and block.lead.endswith(":"):
                        leads.append(block.lead)
                    items.extend(i for i in block.items if 3 <= len(i) <= 300)
                for sentence in split_sentences(block.lead):
                    if sentence[-1:] in ".!?" and 30 <= len(sentence) <= 400 and not sentence.endswith(":"):
                        sentences.append(sentence)
                for text in (block.lead, *block.items):
                    vocab.update(w for w in words(text) if w.isalpha() and len(w) >= 4 and w not in STOPWORDS)
    if not sentences:
        raise ValueError(f"no usable sentences in {corpus_dir}")
    return Pools(sorted(set(sentences)), sorted(set(items)), sorted(set(leads)) or ["These include:"],
                 sorted(set(headings)), sorted(set(titles)), sorted(vocab))


def _vary(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    """The text with one lower-case word (never the first) swapped for another corpus word."""
    tokens = text.split(" ")
    spots = [i for i in range(1, len(tokens)) if tokens[i].isalpha() and tokens[i].islower()]
    if spots:
        tokens[rng.choice(spots)] = rng.choice(vocabulary)
    return " ".join(tokens)


def make_article(rng: random.Random, p: Pools, number: int) -> str:
    title = f"{rng.choice(p.titles)} (part {number})"
    lines = [f"# {title}", ""]
    for _ in range(rng.randint(3, 7)):
        lines += [f"## {rng.choice(p.headings)}", ""]
        for _ in range(rng.randint(1, 3)):
            if p.items and rng.random() < 0.15:
                lines.append(_vary(rng.choice(p.leads), rng, p.vocabulary))
                lines += [f"- {_vary(item, rng, p.vocabulary)}" for item in rng.sample(p.items, min(len(p.items), rng.randint(2, 5)))]
            else:
                picked = rng.sample(p.sentences, min(len(p.sentences), rng.randint(2, 5)))
                lines.append(" ".join(_vary(s, rng, p.vocabulary) for s in picked))
            lines.append("")
    return "\n".join(lines)


def generate(out: Path, chunks: int, seed: int = 0, corpus_dir: Path = ROOT / "corpus",
             settings: Settings | None = None) -> dict:
    """Write articles into the (new or empty) folder `out` until they make `chunks` chunks."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; give a new folder")
    settings = settings or Settings()
    p = pools(corpus_dir, settings)
    rng = random.Random(seed)
    total = articles = sentences = 0
    started = time.perf_counter()
    while total < chunks:
        name = f"synth-{articles:06d}.md"
        text = make_article(rng, p, articles)
        made = chunk_article(parse_article(text, name, settings), settings)
        total += len(made)
        sentences += sum(len(c.sentences) for c in made)
        (out / name).write_text(text, encoding="utf-8")
        articles += 1
    return {"articles": articles, "chunks": total, "sentence_slots": sentences,
            "bytes": sum(f.stat().st_size for f in out.iterdir()), "seconds": time.perf_counter() - started}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", "--size", type=int, default=1000, help="chunks to generate (default 1000)")
    parser.add_argument("--out", required=True, help="a new or empty folder for the articles")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stats = generate(Path(args.out), args.chunks, args.seed)
    print(f"articles {stats['articles']}  chunks {stats['chunks']}  sentence slots {stats['sentence_slots']}  "
          f"bytes {stats['bytes']}  seconds {stats['seconds']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
