"""Formats shared by the scheduler and the executor: the only executor module the
scheduler imports. Keep it free of imports from the rest of mesobatch."""

from __future__ import annotations

import os
import re


def log_file_names(job_id: int, name: str) -> tuple[str, str]:
    """File names for a job's stdout and stderr (in a log directory or a sandbox)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "job"
    return f"{job_id}-{safe}.out", f"{job_id}-{safe}.err"


def log_paths(log_dir: str, job_id: int, name: str) -> tuple[str, str]:
    out, err = log_file_names(job_id, name)
    return os.path.join(log_dir, out), os.path.join(log_dir, err)
