"""Indexing: articles and models -> an index generation on disk, and loading it back (stage 4).

The build (`build.py`), the on-disk format and its checks (`index.py`), what is derived
from the vectors at load (`features.py`), the stores searched (`stores.py`,
`milvus_store.py`, chosen in `backends.py`), and which model embeds an index's questions
(`question_model.py`).
"""
