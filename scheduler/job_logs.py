"""Reading job logs back from the log directory (the API's getJobLog, the command
line's summary)."""

from __future__ import annotations

import glob
import os

#: the most a log read for its last lines reads from its end
_TAIL_READ = 64 * 1024


def log_file(log_dir: str, job_id: int) -> str | None:
    """The path of job ``job_id``'s log in ``log_dir`` (``<id>-<name>.log``), if any."""
    found = glob.glob(os.path.join(glob.escape(log_dir), f"{job_id}-*.log"))
    return found[0] if found else None


def read_log(log_dir: str, job_id: int, last_lines: int | None = None) -> str | None:
    """The log's text (undecodable bytes replaced), or its last ``last_lines`` lines
    (read from at most the last 64 KiB); None if the job has no log there."""
    path = log_file(log_dir, job_id)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if last_lines is not None:
                f.seek(max(0, f.seek(0, os.SEEK_END) - _TAIL_READ))
            data = f.read()
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    if last_lines is None:
        return text
    lines = text.splitlines()
    return "\n".join(lines[len(lines) - last_lines:] if last_lines else [])
