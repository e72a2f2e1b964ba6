"""The Milvus backend of the retrieval stores (qa/indexing/stores.py): one collection per index generation.

Chosen with `Settings.store = "milvus"` (QA_STORE=milvus). Where: `Settings.milvus_uri`
(QA_MILVUS_URI), a Milvus server or cluster ("http://host:19530"); empty, the default, keeps a
milvus-lite file, `milvus.db`, in the index folder, which is Milvus's own engine in the process,
with the same client API as a cluster.

A build writes its vectors into a new collection named `<milvus_collection>__<build id>`, with one
partition per table ("chunks", "sentences", "questions"; primary keys are the row numbers, offset
per table so they are unique in the collection), indexed FLAT (exact) or HNSW as
`stores.dense_kind` chooses for the largest table. When the collection is written, flushed and
loaded, `publish` points the alias `<milvus_collection>` at it in one step (Milvus's alter_alias),
just before the index folder's CURRENT pointer is swapped: a build killed before that leaves the
alias on the live collection, and the next build drops the half-written one (`prune`).

The engine searches the collection its manifest names, not the alias: a question being answered
keeps the generation it started with while a build switches the alias, as with the files. The
alias is the live generation for anything else that reads the collection.

Limits: the lexical index stays bm25s in the generation's folder (docs/SCALING.md says why), and
passages, sentences and their vectors for re-scoring are still read from the folder, so every
replica needs the index folder too. milvus-lite serves one process per file.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np

from qa.errors import REBUILD_HINT, IndexCorruptError, IndexIncompatibleError, StoreUnavailableError
from qa.settings import Settings
from qa.indexing.stores import Tables, dense_kind

LITE_FILE = "milvus.db"
TABLES = ("chunks", "sentences", "questions")
MAX_TOPK = 16_384  # Milvus refuses a larger limit
_INSERT_BATCH = 4_096

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def uri(settings: Settings) -> str:
    """Where the collections live: the configured server, or the milvus-lite file of the index folder."""
    return settings.milvus_uri or str(Path(settings.index_dir).resolve() / LITE_FILE)


def client(settings: Settings):
    """One client per URI and process (milvus-lite starts its engine once per file)."""
    where = uri(settings)
    with _clients_lock:
        if where not in _clients:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise StoreUnavailableError(
                    f"setting store is milvus but pymilvus is not installed ({exc}); "
                    "pip install -r requirements.txt, or use QA_STORE=faiss") from exc
            if not settings.milvus_uri:
                Path(where).parent.mkdir(parents=True, exist_ok=True)
            try:
                _clients[where] = MilvusClient(uri=where, timeout=10)
            except Exception as exc:  # pymilvus raises its own and grpc's errors
                if not settings.milvus_uri and _locked(Path(where)):
                    raise StoreUnavailableError(
                        f"the milvus-lite file {where} is open in another process (a page or a build): milvus-lite "
                        "serves one process at a time; stop that one, or give several processes a Milvus server "
                        "(setting milvus_uri, QA_MILVUS_URI)") from exc
                raise StoreUnavailableError(
                    f"cannot reach Milvus at {where!r} (setting milvus_uri, QA_MILVUS_URI): {_reason(exc)}") from exc
        return _clients[where]


def close(settings: Settings) -> None:
    """Let go of the client of this URI (a milvus-lite file can then be opened by another process)."""
    with _clients_lock:
        found = _clients.pop(uri(settings), None)
    if found is not None:
        found.close()


def _locked(path: Path) -> bool:
    """Whether another process holds the milvus-lite file (milvus-lite locks the file itself)."""
    import fcntl
    try:
        with open(path / "LOCK" if path.is_dir() else path, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:300]


def collection_name(settings: Settings, generation: str) -> str:
    return f"{settings.milvus_collection}__{re.sub(r'[^A-Za-z0-9_]', '_', generation)}"


class MilvusStore:
    """One table's vectors: a partition of the generation's collection."""

    def __init__(self, milvus, collection: str, partition: str, offset: int, size: int, kind: str,
                 ef_search: int, where: str) -> None:
        self.milvus, self.collection, self.partition = milvus, collection, partition
        self.offset, self.size, self.kind, self.ef_search, self.where = offset, size, kind, ef_search, where

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size, MAX_TOPK)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        params = {"metric_type": "IP", "params": {"ef": max(k, self.ef_search)} if self.kind == "hnsw" else {}}
        try:
            found = self.milvus.search(self.collection, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                       limit=k, anns_field="vector", partition_names=[self.partition],
                                       search_params=params)[0]
        except Exception as exc:
            raise StoreUnavailableError(f"Milvus at {self.where!r} (setting milvus_uri) failed a search of "
                                        f"{self.collection}: {_reason(exc)}") from exc
        ids = np.fromiter((hit["id"] for hit in found), dtype=np.int64, count=len(found)) - self.offset
        scores = np.fromiter((hit["distance"] for hit in found), dtype=np.float32, count=len(found))
        return ids, scores


class MilvusBackend:
    name = "milvus"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def write(self, tables: Tables, folder: Path, generation: str) -> dict:
        from pymilvus import DataType

        milvus = client(self.settings)
        name = collection_name(self.settings, generation)
        counts = {table: len(getattr(tables, table)) for table in TABLES}
        offsets = {"chunks": 0, "sentences": counts["chunks"], "questions": counts["chunks"] + counts["sentences"]}
        kind = dense_kind(max(counts.values()), self.settings)
        dimension = int(tables.chunks.shape[1])
        try:
            schema = milvus.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            index = milvus.prepare_index_params()
            if kind == "flat":
                index.add_index("vector", index_type="FLAT", metric_type="IP")
            else:
                index.add_index("vector", index_type="HNSW", metric_type="IP",
                                params={"M": self.settings.hnsw_m, "efConstruction": self.settings.hnsw_ef_construction})
            if milvus.has_collection(name):  # a killed build of this very id: start it again
                milvus.drop_collection(name)
            milvus.create_collection(name, schema=schema, index_params=index)
            for table in TABLES:
                milvus.create_partition(name, table)
                vectors = np.ascontiguousarray(getattr(tables, table), dtype=np.float32)
                for start in range(0, len(vectors), _INSERT_BATCH):
                    rows = [{"id": offsets[table] + start + i, "vector": row}
                            for i, row in enumerate(vectors[start:start + _INSERT_BATCH])]
                    milvus.insert(name, rows, partition_name=table)
            milvus.flush(name)
            milvus.load_collection(name)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise StoreUnavailableError(f"cannot write collection {name} to Milvus at {uri(self.settings)!r} "
                                        f"(setting milvus_uri): {_reason(exc)}") from exc
        return {"backend": self.name, "uri": self.settings.milvus_uri, "collection": name,
                "alias": self.settings.milvus_collection, "kind": kind, "kinds": {table: kind for table in TABLES},
                "dimension": dimension,
                "counts": counts, "offsets": offsets}

    def open(self, entry: dict, folder: Path) -> tuple[MilvusStore, MilvusStore, MilvusStore]:
        if entry.get("uri") != self.settings.milvus_uri:
            where = entry.get("uri") or f"the milvus-lite file {LITE_FILE} of the index folder"
            raise IndexIncompatibleError(
                f"the index in {folder.parent} was built on Milvus at {where!r}, but setting milvus_uri is "
                f"{self.settings.milvus_uri!r}; rebuild it with: {REBUILD_HINT}")
        milvus = client(self.settings)
        name, counts = entry["collection"], entry["counts"]
        try:
            present = milvus.has_collection(name)
            rows = int(milvus.get_collection_stats(name)["row_count"]) if present else 0
            if present:
                milvus.load_collection(name)
        except Exception as exc:
            raise StoreUnavailableError(f"Milvus at {uri(self.settings)!r} (setting milvus_uri) cannot open "
                                        f"{name}: {_reason(exc)}") from exc
        if not present:
            raise IndexCorruptError(f"the index in {folder} names Milvus collection {name}, which is not at "
                                    f"{uri(self.settings)!r}; rebuild it with: {REBUILD_HINT}")
        if rows != sum(counts.values()):
            raise IndexCorruptError(f"Milvus collection {name} holds {rows} vectors, the index in {folder} "
                                    f"{sum(counts.values())}; rebuild it with: {REBUILD_HINT}")
        return tuple(MilvusStore(milvus, name, table, entry["offsets"][table], counts[table], entry["kind"],
                                 self.settings.hnsw_ef_search, uri(self.settings))
                     for table in TABLES)  # type: ignore[return-value]

    def publish(self, entry: dict) -> None:
        milvus = client(self.settings)
        alias = entry["alias"]
        try:
            if _alias_exists(milvus, alias):
                milvus.alter_alias(entry["collection"], alias)
            else:
                milvus.create_alias(entry["collection"], alias)
        except Exception as exc:
            raise StoreUnavailableError(f"cannot point alias {alias} at {entry['collection']} in Milvus at "
                                        f"{uri(self.settings)!r} (setting milvus_uri): {_reason(exc)}") from exc

    def prune(self, keep: list[dict]) -> None:
        milvus = client(self.settings)
        kept = {entry.get("collection") for entry in keep}
        prefix = f"{self.settings.milvus_collection}__"
        for name in milvus.list_collections():
            if name.startswith(prefix) and name not in kept:
                milvus.drop_collection(name)


def live_collection(settings: Settings) -> str | None:
    """The collection the alias names, or None when there is no alias yet."""
    milvus = client(settings)
    if not _alias_exists(milvus, settings.milvus_collection):
        return None
    return milvus.describe_alias(settings.milvus_collection)["collection_name"]


def _alias_exists(milvus, alias: str) -> bool:
    # Listed, not described: describing a missing alias makes pymilvus log an error with its traceback.
    return alias in (milvus.list_aliases().get("aliases") or [])
