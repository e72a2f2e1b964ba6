"""Answering: a question and a loaded index -> hits -> the answer sentence or a refusal (stages 5 and 6).

Triage before any search (`triage.py`), the articles' words added to the question
(`synonyms.py`, `synonyms.txt`), hybrid search (`search.py`), the answer sentence and
its refusal (`answer.py`), and what a reply shows around it (`context.py`).
"""
