"""Models: what turns texts into vectors and signals into a refusal (stage 3).

The embedding model and the two ways it runs (`embedding.py`, `onnx_model.py`), its ONNX
export and its copy fine-tuned on the question bank, both made at build time and kept by
key (`export.py`, `tuning.py`), the question bank it is tuned on (`question_bank.py`), and
the fitted refusal model with the background it reads questions against (`refusal.py`).
Knows nothing of an index on disk.
"""
