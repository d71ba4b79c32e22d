"""`mesobatch status [URL]`: a running batch in the terminal (like squeue), from its
/api/status JSON; and how `mesobatch run` lets it find a batch without a URL."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .snapshot import SCHEMA

URL_ENV = "MESOBATCH_STATUS_URL"


class StatusError(Exception):
    """The status could not be read; the message says where and why."""


# ----------------------------------------------------------------------------- discovery


def runs_dir() -> Path:
    """Where each `mesobatch run` of this user leaves its status page's address."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"mesobatch-{os.getuid()}"


@contextlib.contextmanager
def announce(url: str | None) -> Iterator[None]:
    """Print the status page's address and leave it where `mesobatch status` looks,
    for as long as the run lasts."""
    if url is None:
        yield
        return
    print(f"status page: {url} (or: mesobatch status)", file=sys.stderr)
    path: Path | None = runs_dir() / f"{os.getpid()}.url"
    try:
        runs_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
        runs_dir().joinpath(f"{os.getpid()}.url").write_text(url + "\n")
    except OSError:
        path = None  # not found without a URL then; `mesobatch status URL` still works
    try:
        yield
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_url() -> str:
    """The address of this user's running batch: $MESOBATCH_STATUS_URL, else the
    newest `mesobatch run` still alive."""
    url = os.environ.get(URL_ENV)
    if url:
        return url
    found: list[tuple[float, str]] = []
    with contextlib.suppress(OSError):
        for path in runs_dir().glob("*.url"):
            if path.stem.isdigit() and _alive(int(path.stem)):
                with contextlib.suppress(OSError):
                    found.append((path.stat().st_mtime, path.read_text().strip()))
    if not found:
        raise StatusError(f"no running `mesobatch run` found (in {runs_dir()}): give the "
                          f"status page's URL, or set {URL_ENV}")
    return max(found)[1]


# ----------------------------------------------------------------------------- reading


def api_url(url: str) -> str:
    """The JSON endpoint of a status page given by its address (with or without path)."""
    if "://" not in url:
        url = "http://" + url
    base = url.split("?", 1)[0].rstrip("/")
    return base if base.endswith("/api/status") else base + "/api/status"


def fetch(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """The /api/status document at ``url``."""
    target = api_url(url)
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            doc = json.load(response)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise StatusError(f"cannot read {target}: {reason}") from None
    except ValueError as e:
        raise StatusError(f"{target} did not answer with JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise StatusError(f"{target} is not a mesobatch status page (schema "
                          f"{doc.get('schema') if isinstance(doc, dict) else None!r}, "
                          f"expected {SCHEMA})")
    return doc


# ----------------------------------------------------------------------------- showing


def _time(seconds: float) -> str:
    s = int(seconds)
    h, m = s // 3600, s % 3600 // 60
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def _mib(n: float) -> str:
    return f"{n / 2**30:.1f}G" if n >= 2**30 else f"{n / 2**20:.0f}M"


def _used(j: dict[str, Any]) -> tuple[str, str, str]:
    """Peak memory of asked, CPU seconds, and the far-over flag ("" when within)."""
    peak, bound = j.get("peak_memory"), j.get("memory_at_most")
    cpu = j.get("cpu_time")
    used = (_mib(peak) if peak is not None else "≤" + _mib(bound) if bound is not None
            else "?")
    return (f"{used}/{_mib(j.get('memory', 0))}",
            f"{cpu:.1f}" if cpu is not None else "?", ", ".join(j.get("over", ())))


def render(doc: dict[str, Any], console: Any, *, failures: int = 5,
           finished: int = 5) -> None:
    """Totals, running jobs (squeue's columns), the queue by shape with why each waits,
    nodes, the latest failures and successes with what they used of what they asked."""
    from rich.table import Table  # noqa: PLC0415

    t = doc["totals"]
    now = doc["taken_at"]
    console.print(f"[bold]{doc['backend']}[/] workflow {doc['workflow_id']}, up "
                  f"{_time(now - doc['started_at'])}: {t['running']} running, "
                  f"{t['queued']} queued, {t['succeeded']} succeeded, {t['failed']} failed, "
                  f"{t['killed']} killed (of {t['issued']} issued)", highlight=False)
    if doc.get("fatal_error"):
        console.print(f"[red]the backend cannot run jobs: {doc['fatal_error']}[/]",
                      highlight=False)
    jobs = Table("JOBID", "NAME", "ST", "TIME", "CPUS", "MEM", "NODE", box=None,
                 header_style="bold")
    for j in doc["running"]:
        jobs.add_row(str(j["job_id"]), j["name"], "R" if j["state"] == "running" else "CF",
                     _time(j["run_time"]), f"{j['cores']:g}", _mib(j["memory"]), j["node"])
    for q in doc["queue"]:
        jobs.add_row("-", f"{q['jobs']} x {q['shape']}", "PD", "0:00", "", "",
                     f"({q['why']})")
    if doc["running"] or doc["queue"]:
        console.print(jobs)
    if doc["running_not_shown"]:
        console.print(f"... and {doc['running_not_shown']} more running")
    if doc["nodes"]:
        nodes = Table("NODE", "STATE", "JOBS", "CPUS ASKED", "LOAD", "MEM USED", box=None,
                      header_style="bold")
        for n in doc["nodes"]:
            nodes.add_row(n["name"], n["state"], str(n["jobs"]),
                          f"{n['cores_requested']:g}/{n['cores_total']:g}",
                          f"{n['cpu_load']:.0%}", f"{n['memory_used']:.0%} of "
                          f"{_mib(n['memory_total'])}")
        console.print(nodes)
    shown = doc["failures"][:failures]
    if shown:
        bad = Table("FAILED", "NAME", "RESULT", "EXIT", "NODE", "MAXRSS/ASKED", "CPU S",
                    "OVER", "LAST LOG LINE", box=None, header_style="bold")
        for f in shown:
            last = f["log_tail"][-1] if f["log_tail"] else f["message"]
            bad.add_row(str(f["job_id"]), f["name"], f["result"], str(f["exit_code"]),
                        f["node"], *_used(f), last)
        console.print(bad)
    done = doc.get("finished", [])[:finished]
    if done:
        good = Table("DONE", "NAME", "NODE", "TIME", "MAXRSS/ASKED", "CPU S", "OVER",
                     box=None, header_style="bold")
        for j in done:
            good.add_row(str(j["job_id"]), j["name"], j["node"], _time(j["wall_time"]),
                         *_used(j))
        console.print(good)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status", allow_abbrev=False, help="show a running batch (like squeue)",
        description="Show a running batch from its status page: totals, running jobs, "
        "the queue by shape and why it waits, nodes, recent failures. Without URL: "
        f"${URL_ENV}, else this user's newest running `mesobatch run`.")
    p.add_argument("url", metavar="URL", nargs="?",
                   help="the status page's address, e.g. http://127.0.0.1:8080/")
    p.add_argument("--json", action="store_true", help="print the JSON document as it is")
    p.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                   help="show it again every SECONDS until interrupted")


def run(args: argparse.Namespace) -> int:
    """`mesobatch status`; StatusError for the caller to report."""
    from rich.console import Console  # noqa: PLC0415

    url = args.url or find_url()
    if args.watch is not None and not args.watch > 0:
        raise StatusError(f"invalid value {args.watch!r} for --watch: expected seconds > 0")
    console = Console()
    while True:
        doc = fetch(url)
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            if args.watch is not None:
                console.clear()
            render(doc, console)
        if args.watch is None:
            return 0
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0
