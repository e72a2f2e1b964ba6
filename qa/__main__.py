"""`python -m qa ...`: see qa/cli.py."""

import sys

from qa.cli import main

sys.exit(main())
