"""``python -m tests.doubles.lsf``: test hooks of the LSF fake (the store is $FAKE_LSF_DIR).

    vanish JOBID           the job disappears from bjobs at once (as if mbatchd lost it)
    terminate JOBID TERM_X the job ends as LSF ends it for that reason (e.g. TERM_LOAD,
                           TERM_REMOVE_HUNG_JOB, TERM_ADMIN)
    dump                   print the store
"""

from __future__ import annotations

import json
import sys

from ..hpcfake.control import Match, terminate, vanish
from .commands import TERM_REASONS, store


def _match(raw: str) -> Match:
    return lambda j: j["id"] == raw or str(j["extra"]["job_id"]) == raw


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "vanish":
        print(" ".join(vanish(store(), _match(argv[1]))))
        return 0
    if len(argv) == 3 and argv[0] == "terminate":
        if argv[2] not in TERM_REASONS:
            print(f"unknown reason {argv[2]}; known: {', '.join(sorted(TERM_REASONS))}",
                  file=sys.stderr)
            return 2
        print(" ".join(terminate(store(), _match(argv[1]), argv[2])))
        return 0
    if argv == ["dump"]:
        print(json.dumps(store().read(), indent=1))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
