"""`python -m mesobatch` is the `mesobatch` command."""

import sys

from .scheduler.cli import main

sys.exit(main())
