"""The errors the library raises, and nothing else.

Library code raises these and never prints; the edges (the command line in
`qa.cli`, the chat page in `app.py`) turn them into one plain message. Each
error carries that message, worded for the person who has to act on it, and
where there is a fix it names the command to run.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class: anything the product can explain to its user."""


class SettingsError(QAError):
    """An unknown setting or a value out of range."""


class QuestionError(QAError):
    """A question that cannot be searched (empty, or too long)."""


class CorpusError(QAError):
    """The corpus folder is missing or holds no readable article."""


class ModelError(QAError):
    """The embedding model cannot be found or loaded."""


class RefusalModelError(QAError):
    """The fitted refusal model is missing, unreadable, or fitted for another model or signals."""


class IndexError_(QAError):
    """Base for problems with the index on disk.

    Named with a trailing underscore so it never shadows the builtin
    IndexError for a reader of this package.
    """


class IndexMissingError(IndexError_):
    """No index has been built in the index folder yet."""


class IndexIncompatibleError(IndexError_):
    """The index was built with another model, dimension or format."""


class IndexCorruptError(IndexError_):
    """A file of the index is missing, truncated or altered."""


class IndexWriteError(IndexError_):
    """The index folder cannot be written (read-only, full, ...)."""


class StoreUnavailableError(IndexError_):
    """The index's vector store (a Milvus server, a milvus-lite file) cannot be reached or used."""


class FeedbackError(QAError):
    """A vote, comment or promotion that cannot be taken (unknown reply or id, too long, not in the article)."""


class FeedbackStoreError(FeedbackError):
    """The feedback database cannot be read or written (read-only, locked, corrupt); the cause is chained."""


REBUILD_HINT = "python -m qa build"
