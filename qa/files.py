"""Files, one helper per job: content hashes, and a keyed folder written whole or not at all.

- `sha256_file(path)` / `sha256_bytes(data)`: the hex sha256 every checksum in an index, a manifest,
  an ONNX export's info and the corpus's staleness check is; `stamped_sha256(path)`: the same, read
  from a stamp beside a big file while the file is provably untouched; `remembered_sha256(path)`: the
  same, remembered in this process while the file is untouched (for files whose folder is not ours
  to write stamps in); `recipe_key(recipe)`: the short key that
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


# Beside a big file: its sha256 and the stat it had when hashed (`stamped_sha256`).
STAMP_SUFFIX = ".sha256.json"


def _identity(path: Path) -> dict:
    """What changes whenever a file's contents can have: its inode, size, and modification and change
    times in nanoseconds (any write, rename over it, utime or chmod sets the change time to now, and
    no call sets it back)."""
    stat = os.stat(path)
    return {"dev": stat.st_dev, "ino": stat.st_ino, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns}


def stamped_sha256(path: Path) -> str:
    """`sha256_file(path)`, read from the stamp beside it when the file's identity is the one the stamp
    was written for; else hashed, and the stamp (re)written when the folder allows. A process that loads
    a 90 MB model file checks it without reading it each time."""
    path = Path(path)
    stamp = path.with_name(path.name + STAMP_SUFFIX)
    identity = _identity(path)
    try:
        record = json.loads(stamp.read_text(encoding="utf-8"))
        if isinstance(record, dict) and record.get("identity") == identity and isinstance(record.get("sha256"), str):
            return record["sha256"]
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    if _identity(path) == identity:  # not changed while it was read
        tmp = stamp.with_name(f"{TMP_PREFIX}{stamp.name}-{uuid.uuid4().hex[:6]}")
        try:
            tmp.write_text(json.dumps({"identity": identity, "sha256": digest}), encoding="utf-8")
            os.replace(tmp, stamp)
        except OSError:  # a read-only folder: hashed again next time
            tmp.unlink(missing_ok=True)
    return digest


# path -> (its identity when hashed, its sha256): `remembered_sha256`'s, for this process only.
_REMEMBERED: dict[str, tuple[dict, str]] = {}


def remembered_sha256(path: Path) -> str:
    """`sha256_file(path)`, hashed once per process while the file's identity stays the one it had then:
    the packaged model's files are hashed by the export's key, the shipped sample vectors' check and the
    export itself, one after the other, on a first start's way to its first answer."""
    path = Path(path)
    identity = _identity(path)
    known = _REMEMBERED.get(str(path))
    if known is not None and known[0] == identity:
        return known[1]
    digest = sha256_file(path)
    if _identity(path) == identity:  # not changed while it was read
        _REMEMBERED[str(path)] = (identity, digest)
    return digest


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


__all__ = ["sha256_file", "stamped_sha256", "remembered_sha256", "STAMP_SUFFIX", "sha256_bytes", "recipe_key", "temp_folder", "publish_folder", "TMP_PREFIX"]
