"""Build time: a sentence-transformers model of the plain layout, run with transformers alone.

Owns recognising the plain layout (a transformer, mean pooling and
normalisation, no prompt: the packaged MiniLM and every copy tuned from it)
and computing its vectors as sentence-transformers does, op for op, with
torch and transformers only. The export traces this module
(qa/models/export.py) and fine-tuning trains it (qa/models/tuning.py).

Why: importing sentence-transformers also imports scikit-learn, scipy,
pandas, pyarrow and PIL; in a build process that costs seconds and a few
hundred MB while the tuned model is prepared (docs/BENCHMARKS.md, build).
The same tokens through the same modules give the same vectors and, in
training, the same weights, bit for bit (tests/test_tuning.py checks it).

Limits: any other layout (another pooling, a prompt, no fast tokenizer)
goes through sentence-transformers itself; `plain_layout` says which.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# What the tokenizer may give that the transformer takes, in the order the export names its inputs.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Files of a sentence-transformers folder that transformers' save_pretrained writes itself (and its card).
_WEIGHT_FILES = {"config.json", "model.safetensors", "pytorch_model.bin", "README.md"}


def plain_layout(folder: Path) -> tuple[int, bool] | None:
    """(max_seq_length, do_lower_case) when the sentence-transformers model saved in `folder` is a
    transformer, mean pooling and normalisation, with no prompt, and says its window; else None."""
    def read(name: str) -> dict:
        return json.loads((folder / name).read_text(encoding="utf-8"))

    try:
        modules = read("modules.json")
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        pooling = read(str(Path(modules[1]["path"]) / "config.json"))
        config = read("sentence_bert_config.json")
        prompts = read("config_sentence_transformers.json") if (folder / "config_sentence_transformers.json").is_file() \
            else {}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    modes = {k.removeprefix("pooling_mode_"): v for k, v in pooling.items() if k.startswith("pooling_mode_")}
    mean = pooling.get("pooling_mode") == "mean" or (modes.get("mean_tokens") is True
                                                      and not any(v for k, v in modes.items() if k != "mean_tokens"))
    window = config.get("max_seq_length")
    if (kinds != ["Transformer", "Pooling", "Normalize"] or modules[0].get("path") or not mean
            or not isinstance(window, int) or prompts.get("default_prompt_name")
            or not (folder / "tokenizer.json").is_file()):
        return None
    return window, bool(config.get("do_lower_case", False))


class PlainModel:
    """The model in `location` (of the plain layout) as transformers loads it, with mean pooling and
    normalisation written out as sentence-transformers computes them."""

    def __init__(self, location: str, max_seq_length: int, do_lower_case: bool) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.location = location
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        self.transformer = AutoModel.from_pretrained(location)
        self.inputs = tuple(name for name in INPUTS if name in self.tokenizer(["a"]))
        transformer, inputs = self.transformer, self.inputs

        class MeanPooled(torch.nn.Module):
            """Token tensors (in `inputs` order) -> one unit vector per text; with `with_tokens` (the export's
            trace) also the token vectors before pooling."""

            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer
                self.with_tokens = False

            def forward(self, *tensors):
                named = dict(zip(inputs, tensors))
                tokens = self.transformer(**named)[0]
                mask = named["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
                return (vectors, tokens) if self.with_tokens else vectors

        self.module = MeanPooled().eval()
        self._checkpointing = False

    @property
    def dimension(self) -> int:
        return int(self.transformer.config.hidden_size)

    def tokens(self, texts: list[str]) -> tuple:
        """The token tensors of `texts`, padded to the longest, cut at the model's window."""
        batch = self.tokenizer([t.lower() if self.do_lower_case else t for t in texts], padding=True,
                               truncation=True, max_length=self.max_seq_length, return_tensors="pt")
        return tuple(batch[name] for name in self.inputs)

    def train(self, training: bool = True) -> None:
        """Training mode, keeping only each layer's input for the backward pass and computing the rest again
        there (activation checkpointing): a fraction of the memory per step, and the same weights, bit for
        bit, since the recomputation replays the dropout masks (tests/test_tuning.py checks it)."""
        self.module.train(training)
        if training and self.transformer.supports_gradient_checkpointing:
            kwargs = {"use_reentrant": False}  # torch's advice; the reentrant form needs inputs with gradients
            if hasattr(self.transformer, "activation_checkpointing_enable"):
                self.transformer.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:  # transformers before 5.x named it so
                self.transformer.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
            self._checkpointing = True
        elif not training and self._checkpointing:
            (getattr(self.transformer, "activation_checkpointing_disable", None)
             or self.transformer.gradient_checkpointing_disable)()
            self._checkpointing = False

    def vectors(self, texts: list[str]):
        """Unit vectors of `texts` as a torch tensor (with gradients when the module is training)."""
        return self.module(*self.tokens(texts))

    def save(self, out: Path) -> None:
        """A sentence-transformers folder: the weights saved by transformers, every other file (tokenizer,
        pooling, the layout) copied from the folder the model was loaded from."""
        out.mkdir(parents=True, exist_ok=True)
        source = Path(self.location)
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if path.is_file() and str(relative) not in _WEIGHT_FILES and "onnx" not in relative.parts:
                (out / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out / relative)
        self.transformer.save_pretrained(str(out))


__all__ = ["plain_layout", "PlainModel", "INPUTS"]
