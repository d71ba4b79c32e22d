"""``python -m tests.doubles.pbs``: test hooks of the PBS fake (the store is $FAKE_PBS_DIR).

    vanish JOBID                the job disappears from qstat, history included
    terminate JOBID EXIT_STATUS the job ends with that Exit_status as PBS sets it (e.g. -20
                                JOB_EXEC_RERUN_MS_FAIL, -14, -1)
    dump                        print the store
"""

from __future__ import annotations

import json
import sys

from ..hpcfake.control import Match, terminate, vanish
from .commands import seq_of, store


def _match(raw: str) -> Match:
    seq = seq_of(raw).removesuffix("[]")
    return lambda j: j["id"] == seq or j["extra"]["array_seq"] == seq


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "vanish":
        print(" ".join(vanish(store(), _match(argv[1]))))
        return 0
    if len(argv) == 3 and argv[0] == "terminate":
        print(" ".join(terminate(store(), _match(argv[1]), f"exit:{int(argv[2])}")))
        return 0
    if argv == ["dump"]:
        print(json.dumps(store().read(), indent=1))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
