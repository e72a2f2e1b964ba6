"""Why the wrong sentence wins, and what quoting two sentences would change: offline, on answer_choice_lab's dump.

Not part of the product. Reads the candidates `answer_choice_lab.py dump` recorded (every candidate sentence
of every question, with its passage) and opens the same groups' indexes (as suite_lab.py does) for the
passages' layout. Two commands:

    python eval/experiments/answer_span_lab.py classify --work /tmp/suite --out /tmp/choice
    python eval/experiments/answer_span_lab.py spans --work /tmp/suite --out /tmp/choice

`classify`: for every answered question whose chosen sentence is wrong, where the right one is: the next or
the previous sentence of the chosen one (same section, no heading between; by line kind: paragraph, list
item, lead-in), further in the same passage, another passage of the same section, another section of the
same article, another article; or among no candidate at all.
`spans`: answers right (offline, refusal held as the engine decided) when the chosen sentence is quoted with
its neighbour under rules of several margins, how many answers each rule lengthens, gains and loses, and the
answers' mean length. The judge counts an answer right when it holds the evidence, so a longer quote can
only gain by it: the count of answers lengthened is the price to read beside each gain.

The dump holds the score parts without the restatement penalty; it is added back here as the engine does
(`restatement_penalty`), with the token match read on every candidate (the same choices, answer_choice_lab's
docstring). The product's rule is qa.answering.answer._quoted (paragraph lines only); through the engine
it is measured with suite_lab.py (`--set answer_span_margin=...`).
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from qa.answering.context import BULLET
from qa.evaluation.evaluate import _right
from qa.settings import Settings

from answer_choice_lab import GROUPS, load
from suite_lab import open_groups


def _layout(chunk) -> list[tuple[int, str]]:
    """(line, kind) of each of the chunk's sentences: kind "item", "lead" (leads into a list) or "para"."""
    lines, out, line = chunk.text.split("\n"), [], 0
    for sentence in chunk.sentences:
        at = next((i for i in range(line, len(lines)) if sentence in lines[i]), -1)
        line = at if at >= 0 else line
        text = lines[at] if at >= 0 else ""
        kind = ("item" if text.startswith(BULLET) else
                "lead" if text.rstrip().endswith(":") and at + 1 < len(lines) and lines[at + 1].startswith(BULLET)
                else "para")
        out.append((at, kind))
    return out


class Lab:
    def __init__(self, work: Path, out: Path, groups: list[str], penalty: float):
        opened = open_groups(Settings.from_env(), work, groups)
        self.groups, self.penalty = groups, penalty
        self.index = {g: opened[g][0]._current().index for g in groups}
        self.questions = {g: {q.id: q for q in opened[g][1]} for g in groups}
        self.data = {g: load(out, g) for g in groups}
        self._layouts: dict = {}

    def neighbour(self, group: str, candidate: dict, step: int):
        """(sentence, its kind, the candidate's kind) of the sentence `step` (+1 next, -1 previous) from the
        candidate in its passage, when in the same section with no line between; else None."""
        index = self.index[group]
        chunk = index.chunks[candidate["chunk"]]
        key = (group, candidate["chunk"])
        if key not in self._layouts:
            self._layouts[key] = _layout(chunk)
        layout = self._layouts[key]
        at = chunk.sentences.index(candidate["sentence"])
        other = at + step
        if not 0 <= other < len(chunk.sentences):
            return None
        if chunk.section_of(chunk.sentences[other]) != chunk.section_of(candidate["sentence"]):
            return None
        first, last = sorted((layout[at][0], layout[other][0]))
        if first < 0 or last - first > 1:
            return None
        return chunk.sentences[other], layout[other][1], layout[at][1]

    def answered(self, group: str):
        """(row, candidates, final scores, order best first) of each answered answerable question."""
        for row in self.data[group]:
            candidates = row["candidates"]
            if not row["answerable"] or not row["found"] or not candidates:
                continue
            lifts = row.get("lifts") or [0.0] * len(candidates)
            scores = [c["base"] + c["match"] + lift - self.penalty * c["restated"]
                      for c, lift in zip(candidates, lifts)]
            yield row, candidates, scores, sorted(range(len(candidates)), key=lambda i: -scores[i])

    def classify(self) -> None:
        for group in self.groups:
            counts = Counter()
            for row, candidates, scores, order in self.answered(group):
                best = candidates[order[0]]
                question = self.questions[group][row["id"]]
                rights = [i for i in order if candidates[i]["right"]]
                if best["right"]:
                    counts["right"] += 1
                    continue
                if not rights:
                    counts["no right candidate"] += 1
                    continue
                after, before = self.neighbour(group, best, 1), self.neighbour(group, best, -1)
                chunk = self.index[group].chunks[best["chunk"]]
                if after and _right(question, after[0]):
                    label = f"the next sentence ({after[2]} -> {after[1]})"
                elif before and _right(question, before[0]):
                    label = f"the previous sentence ({before[1]} -> {before[2]})"
                elif any(candidates[i]["chunk"] == best["chunk"] for i in rights):
                    same = next(candidates[i] for i in rights if candidates[i]["chunk"] == best["chunk"])
                    section = chunk.section_of(same["sentence"]) == chunk.section_of(best["sentence"])
                    label = f"further in the same passage ({'same' if section else 'another'} section)"
                elif any(candidates[i]["source"] == best["source"] and candidates[i]["section"] == best["section"]
                         for i in rights):
                    label = "another passage of the same section"
                elif any(candidates[i]["source"] == best["source"] for i in rights):
                    label = "another section of the same article"
                else:
                    label = "another article"
                counts[label] += 1
            answerable = sum(r["answerable"] for r in self.data[group])
            counts["refused"] = answerable - sum(1 for _ in self.answered(group))
            print(f"{group}: " + "; ".join(f"{k} {v}" for k, v in counts.most_common()), flush=True)

    def spans(self, margin: float, kinds: tuple[str, ...], steps: tuple[int, ...]) -> None:
        cells = []
        for group in self.groups:
            right = lengthened = gained = lost = 0
            before_chars, after_chars = [], []
            for row, candidates, scores, order in self.answered(group):
                best = candidates[order[0]]
                score = {}
                for i in order:
                    score.setdefault(candidates[i]["sentence"], scores[i])
                close = []
                for step in steps:
                    found = self.neighbour(group, best, step)
                    if (found and found[1] in kinds and found[2] in kinds and found[0] in score
                            and scores[order[0]] - score[found[0]] <= margin):
                        close.append((score[found[0]], step, found[0]))
                text = best["sentence"]
                if close:
                    _, step, other = max(close)
                    text = f"{text} {other}" if step == 1 else f"{other} {text}"
                ok = _right(self.questions[group][row["id"]], text)
                lengthened += text != best["sentence"]
                gained += ok and not best["right"]
                lost += best["right"] and not ok
                right += ok
                before_chars.append(len(best["sentence"]))
                after_chars.append(len(text))
            answerable = sum(r["answerable"] for r in self.data[group])
            cells.append(f"{group} {right / answerable:.3f} ({lengthened} longer, +{gained} -{lost}, "
                         f"{np.mean(before_chars):.0f} -> {np.mean(after_chars):.0f} chars)")
        print(f"margin {margin}, {'/'.join(kinds)}, {'both sides' if len(steps) == 2 else 'next only'}:\n  "
              + "\n  ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("classify", "spans"))
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True, help="answer_choice_lab.py dump's folder")
    parser.add_argument("--groups", default=",".join(GROUPS))
    args = parser.parse_args()
    lab = Lab(Path(args.work), Path(args.out), args.groups.split(","), Settings().restatement_penalty)
    if args.command == "classify":
        lab.classify()
        return
    for margin in (0.1, 0.15, 0.2, 0.25, 0.3):
        lab.spans(margin, ("para",), (1, -1))
    for margin in (0.15, 0.25):
        lab.spans(margin, ("para", "item", "lead"), (1, -1))
        lab.spans(margin, ("para", "item", "lead"), (1,))
    lab.spans(99.0, ("para", "item", "lead"), (1,))  # always the next sentence: the bound of quoting two


if __name__ == "__main__":
    main()
