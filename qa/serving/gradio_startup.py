"""The page process's start-up without the work gradio does for other people's pages.

Owns three workarounds, each for a cost gradio pays on every start whether a
page needs it or not (docs/BENCHMARKS.md, cold_start: the page's first answer):
- `skip_gradio_stubs`: gradio's import no longer rewrites the type stubs of
  its own components;
- `defer_pandas`: pandas, which gradio imports for its table and plot
  components and its cache, is imported when first used instead of during
  gradio's import (this page has no table, plot or cache);
- `built_without_throwaway_apps`: while the page is built, gradio does not
  make its web app (FastAPI, every route of gradio's) each time a `gr.Blocks` closes
  and each time `queue()` is called; `launch()` makes the one that serves.

Limits: each one changes how gradio runs, not what it serves. `skip_gradio_stubs`
and `defer_pandas` work only when called before gradio is imported (app.py calls
them first); otherwise they do nothing. `built_without_throwaway_apps` is for a
page that is launched: a page built so has no `.app` until `launch()`, and a
`mount_gradio_app` of it works as usual (that makes its own); it swaps a
method of gradio's class for the build's time, so no other page may be built
at the same time on another thread. Imports no gradio itself except inside
`built_without_throwaway_apps`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Callable, TypeVar

T = TypeVar("T")


class _SkipGradioStubs:
    """An import hook for one module, gradio.component_meta: once loaded, its `create_or_modify_pyi` does
    nothing (skip_gradio_stubs). Removes itself when it has done that."""

    MODULE = "gradio.component_meta"

    def find_spec(self, name, path=None, target=None):
        if name != self.MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # not a plain file: imported as usual, stubs and all
        load = spec.loader.exec_module

        def exec_module(module) -> None:
            load(module)
            if callable(getattr(module, "create_or_modify_pyi", None)):
                module.create_or_modify_pyi = lambda *args, **kwargs: None

        spec.loader.exec_module = exec_module
        return spec


def skip_gradio_stubs() -> None:
    """gradio writes the type stubs (.pyi) of its own components at every import: for each component
    class it parses the class's source file and its stub file and rewrites the stub if they differ
    (gradio/component_meta.py, `create_or_modify_pyi`). That is much of `import gradio`
    (docs/BENCHMARKS.md, cold_start), and only editors read the stubs (gradio's wheel ships them). Call before gradio is imported; a no-op after."""
    if "gradio" not in sys.modules and not any(isinstance(f, _SkipGradioStubs) for f in sys.meta_path):
        sys.meta_path.insert(0, _SkipGradioStubs())


class DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not imported yet: the first attribute asked of it that it does
    not have imports the real module, which then replaces it in sys.modules. Carries the real module's
    name, spec and file, so that code that only looks at those (importlib.util.find_spec, inspect) does
    not import it; carries no `__path__`, so importing a submodule imports the whole package first."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name)
        self.__spec__ = spec
        self.__file__ = spec.origin
        self.__loader__ = spec.loader

    def __getattr__(self, attribute: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


def defer_import(name: str) -> bool:
    """Put a DeferredModule for `name` in sys.modules, unless it is imported already or not installed.
    True when it did."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None:
        return False
    sys.modules[name] = DeferredModule(name, spec)
    return True


def defer_pandas() -> None:
    """gradio imports pandas (with pyarrow) at its own import, for its Dataframe and plot components and
    its cache, none of which the page uses (its share of the page's start: docs/BENCHMARKS.md, cold_start).
    Call before gradio is imported; pandas is imported the first time anything uses it."""
    if "gradio" not in sys.modules:
        defer_import("pandas")


def built_without_throwaway_apps(build: Callable[[], T]) -> T:
    """`build()` (a function that builds a page) with gradio's web app made once, by `launch()`. gradio makes
    it when each `gr.Blocks` closes and at each `queue()` call, so that a page run without `launch()` can be
    served; a page of ours is always launched, and `launch()` makes the app again: the chat page's other
    apps (one per `gr.Blocks`, one per `queue()`) are thrown away (docs/BENCHMARKS.md, cold_start). A gradio that has no
    `App.create_app`, or whose own code fails while building without it, gets the page built as it makes
    it: slower, never broken."""
    from gradio.routes import App

    make_app = App.__dict__.get("create_app")
    if not isinstance(make_app, staticmethod):
        return build()
    App.create_app = staticmethod(lambda *args, **kwargs: None)
    try:
        return build()
    except Exception:  # noqa: BLE001 - built again below as gradio builds it; a fault of ours is raised there
        pass
    finally:
        App.create_app = make_app
    return build()
