"""`python -m qa ...`: see qa/cli.py."""

import os
import sys

from qa.cli import main

code = main()
if sys.argv[1:2] == ["ask"]:
    # Once `ask` has written its answers, nothing of the process is needed but its exit status: it leaves
    # without Python's teardown, which frees onnxruntime's session, faiss and numpy object by object and
    # cost a cold `ask` a tenth of its time (docs/BENCHMARKS.md, cold start). The OS frees the memory.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: Python's own exit says so, as before
        sys.exit(code)
    os._exit(code)
sys.exit(code)
