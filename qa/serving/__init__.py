"""Serving: an engine that answers, and the ways people and scripts reach it.

The engine over one live index (`engine.py`), what a page asks of any engine
(`interface.py`), its start-up and status (`startup.py`, `status.py`), the engine in a
process of its own (`service.py`, `child.py`), and the page's side without Gradio: the
conversation (`chat.py`), the reply as HTML (`render.py`, `render.css`), the page's
words (`page.py`), and the plain HTTP API (`http_api.py`). app.py wires these to Gradio.
"""
