"""`python -m mesobatch.executor` runs the executor (what the agent starts)."""

import sys

from .main import main

sys.exit(main())
