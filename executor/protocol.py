"""Formats shared by the scheduler and the executor: the only executor module the
scheduler imports. Keep it free of imports from the rest of mesobatch."""

from __future__ import annotations

import os
import re


def log_file_name(job_id: int, name: str) -> str:
    """The file a job's stdout and stderr go to, interleaved as written (like Slurm's
    default); one file per job halves the file creations on the launch path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "job"
    return f"{job_id}-{safe}.log"


def log_path(log_dir: str, job_id: int, name: str) -> str:
    return os.path.join(log_dir, log_file_name(job_id, name))
