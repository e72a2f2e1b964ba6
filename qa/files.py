"""Files, one helper per job: content hashes, and a keyed folder written whole or not at all.

- `sha256_file(path)` / `sha256_bytes(data)`: the hex sha256 every checksum in an index, a manifest,
  an ONNX export's info and the corpus's staleness check is; `recipe_key(recipe)`: the short key that
  names a tuned model or an ONNX export by what made it (its recipe as sorted JSON).
- `temp_folder(root, key)` + `publish_folder(tmp, folder)`: a folder named by a key (a tuned model,
  an ONNX export) is written under a temporary name beside it and renamed into place in one step,
  so a reader never sees half of one; the caller removes the temporary folder in a `finally`
  (a no-op once it is published). Index generations use their own pointer swap (qa/indexing/index.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

TMP_PREFIX = ".tmp-"  # a folder being written: removed by whoever finds it later (a killed writer's)
KEY_CHARS = 20  # hex digits of a recipe key: 80 bits, unique among the models a machine ever makes


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's contents, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def recipe_key(recipe: dict) -> str:
    """A short key naming what `recipe` makes: the same recipe, the same key, on any machine."""
    return sha256_bytes(json.dumps(recipe, sort_keys=True).encode("utf-8"))[:KEY_CHARS]


def temp_folder(root: Path, key: str) -> Path:
    """A new temporary folder name beside `root / key` (not made yet)."""
    return Path(root) / f"{TMP_PREFIX}{key}-{uuid.uuid4().hex[:6]}"


def publish_folder(tmp: Path, folder: Path, replace: bool = False,
                   already_there: Callable[[], bool] = lambda: False) -> None:
    """Rename the written `tmp` to `folder` in one step. `replace`: a folder already there (a damaged copy)
    is removed first; else a rename that fails is fine when `already_there()` (another writer won)."""
    if replace and folder.exists():
        shutil.rmtree(folder)
    try:
        os.rename(tmp, folder)
    except OSError:
        if not already_there():
            raise


__all__ = ["sha256_file", "sha256_bytes", "recipe_key", "temp_folder", "publish_folder", "TMP_PREFIX"]
