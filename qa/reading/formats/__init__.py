"""Readers, one module per kind of file: bytes of one file -> `qa.reading.article.Article`.

`qa.reading.corpus.READERS` maps file suffixes to these readers; nothing else decides
which files are read. A reader raises ValueError with a reason a maintainer
can act on when the file cannot be used.
"""
