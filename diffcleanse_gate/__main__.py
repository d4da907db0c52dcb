"""Run the command line as `python -m diffcleanse_gate`."""

import sys

from .cli import main

sys.exit(main())
