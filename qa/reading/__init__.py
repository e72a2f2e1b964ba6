"""Reading: the corpus folder -> structured articles -> passages (stages 1 and 2).

Which files are articles and how each kind is read (`corpus.py`, `formats/`), what an
article is (`article.py`), how it is cut into passages (`chunking.py`), and the sentence
splitting and word tokens every later stage shares (`text.py`). Imports nothing of the
later layers; no model runs here.
"""
