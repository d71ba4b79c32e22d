"""``python -m tests.doubles.htcondor``: test hooks of the HTCondor fake ($FAKE_CONDOR_DIR).

    vanish ID      the job (C.P, or all of cluster C) disappears from condor_q and
                   condor_history
    dump           print the store
"""

from __future__ import annotations

import json
import sys

from ..hpcfake.control import vanish
from .commands import store


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "vanish":
        raw = argv[1]
        print(" ".join(vanish(store(), lambda j: j["id"] == raw
                              or str(j["extra"]["cluster"]) == raw)))
        return 0
    if argv == ["dump"]:
        print(json.dumps(store().read(), indent=1))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
