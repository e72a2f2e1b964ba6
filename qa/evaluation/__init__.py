"""Evaluation: the engine measured against baselines on labelled questions and on benchmarks.

Question sets (`evaluate.py`), a SQuAD-format benchmark built with the product's own
build (`benchmark.py`), and the calibration suite over corpora in several styles
(`suite.py`). Used by `python -m qa eval`; nothing of the product imports it.
"""
