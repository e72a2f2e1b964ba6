"""Which backend keeps an index's vector stores: the one place it is chosen, by `Settings.store`.

"faiss" is qa/indexing/stores.py's `FaissBackend` (files in the generation's folder); "milvus" is
qa/indexing/milvus_store.py's `MilvusBackend`, imported only when chosen (pymilvus is heavy). Both implement
qa/indexing/stores.py's `Backend`; this module sits above both, so neither imports the other's chooser.
"""

from __future__ import annotations

from qa.settings import Settings
from qa.indexing.stores import Backend, FaissBackend


def backend(settings: Settings) -> Backend:
    """The backend `settings.store` names."""
    if settings.store == "milvus":
        from qa.indexing.milvus_store import MilvusBackend  # pymilvus is needed only when Milvus is chosen
        return MilvusBackend(settings)
    return FaissBackend(settings)


__all__ = ["backend"]
