"""What the benchmark scripts share: percentiles, and scenarios run each in a fresh
process, interleaved, summarised by their medians.

A script calls itself as ``SCRIPT --child NAME [ARGS]``; the child prints its result
as one JSON object on its last line of output.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank ``p``th percentile."""
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def run_child(script: str, name: str, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    """Run scenario ``name`` of ``script`` in a fresh interpreter; its JSON result."""
    out = subprocess.run([sys.executable, script, "--child", name, *args],
                         capture_output=True, text=True, check=True, cwd=cwd)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def interleaved_medians(names: Iterable[str], repeat: int,
                        run: Callable[[str, int], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``run(name, i)`` for each round i and each name in turn (so drift hits all the
    scenarios alike); per scenario, the median of each figure."""
    names = list(names)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for i in range(repeat):
        for name in names:
            runs[name].append(run(name, i))
    return {name: {m: statistics.median(r[m] for r in results) for m in results[0]}
            for name, results in runs.items()}
