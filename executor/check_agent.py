"""``check-agent``: can this machine run mesobatch's executor bundle?

Run on an agent, as ``python3 mesobatch-executor.pyz check-agent`` (only python3 needed)
or ``mesobatch deploy check-agent``. Each check prints one line; the exit status is 0
when every required check passes, 1 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from urllib.parse import urlsplit

MIN_PYTHON = (3, 10)

Check = tuple[str, bool, str, bool]  # name, passed, detail, required


def check_python() -> Check:
    ok = sys.version_info >= MIN_PYTHON
    want = ".".join(map(str, MIN_PYTHON))
    return ("python", ok, f"{sys.executable} is {sys.version.split()[0]} (needs {want}+)", True)


def check_modules() -> Check:
    try:
        from . import driver, runner  # noqa: F401, PLC0415
    except ImportError as e:
        return ("executor", False, f"cannot import the executor: {e}", True)
    try:
        import cloudpickle  # noqa: PLC0415
    except ImportError:
        return ("cloudpickle", False, "not importable: function jobs cannot run here (the "
                "bundle carries it; an installed mesobatch needs 'pip install cloudpickle')",
                True)
    return ("modules", True, f"executor and cloudpickle {cloudpickle.__version__}", True)


def check_sandbox(work_dir: str) -> Check:
    try:
        os.makedirs(work_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=work_dir, prefix=".mesobatch-check-") as f:
            f.write(b"x")
            f.flush()
        free = shutil.disk_usage(work_dir).free
    except OSError as e:
        return ("sandbox", False, f"{work_dir} is not writable: {e}", True)
    return ("sandbox", True, f"{work_dir} is writable, {free / 2**30:.1f} GiB free", True)


def check_processes() -> Check:
    try:
        done = subprocess.run(["/bin/sh", "-c", "exit 7"], timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return ("processes", False, f"cannot run /bin/sh: {e}", True)
    ok = done.returncode == 7
    return ("processes", ok, "/bin/sh runs tasks" if ok else "/bin/sh misbehaves", True)


def check_node_stats() -> Check:
    try:
        import psutil  # noqa: F401, PLC0415

        return ("node stats", True, "from psutil", False)
    except ImportError:
        pass
    ok = os.access("/proc/meminfo", os.R_OK)
    detail = "from /proc (psutil absent)" if ok else "neither psutil nor /proc: no node load"
    return ("node stats", ok, detail, False)


def check_scheduler(url: str, timeout: float) -> Check:
    """GET <url>/health on the scheduler's resource server (no token needed)."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    try:
        conn_class = (http.client.HTTPSConnection if parts.scheme == "https"
                      else http.client.HTTPConnection)
        conn = conn_class(parts.netloc, timeout=timeout)
        conn.request("GET", parts.path.rstrip("/") + "/health")
        r = conn.getresponse()
        body = r.read(100).decode("utf-8", "replace").strip()
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        return ("scheduler", False, f"{url} is not reachable: {e}", True)
    ok = r.status == 200 and body == "ok"
    return ("scheduler", ok, f"{url} answers" if ok else f"{url} answered {r.status} {body}",
            True)


def check_master(address: str, timeout: float) -> Check:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        return ("master", False, f"{address} is not reachable: {e}", True)
    return ("master", True, f"{address} accepts connections", True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="check-agent", description="Check that this machine can run mesobatch's "
        "executor bundle.")
    parser.add_argument("--scheduler", metavar="URL",
                        help="the scheduler's resource server, http://HOST:PORT (its "
                             "--resourceAddress)")
    parser.add_argument("--master", metavar="HOST:PORT", help="a Mesos master to reach")
    parser.add_argument("--work-dir", default=None, metavar="DIR",
                        help="where sandboxes live (the agent's --work_dir; default: "
                             "$MESOS_SANDBOX or the current directory)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or os.environ.get("MESOS_SANDBOX") or os.getcwd()
    checks: list[Callable[[], Check]] = [
        check_python, check_modules, lambda: check_sandbox(work_dir), check_processes,
        check_node_stats]
    if args.scheduler:
        checks.append(lambda: check_scheduler(args.scheduler, args.timeout))
    if args.master:
        checks.append(lambda: check_master(args.master, args.timeout))
    failed = False
    for check in checks:
        name, ok, detail, required = check()
        mark = "ok" if ok else ("FAIL" if required else "warn")
        print(f"{mark:4}  {name:11} {detail}")
        failed = failed or (required and not ok)
    if not args.scheduler:
        print("note  give --scheduler http://HOST:PORT to check that the scheduler is "
              "reachable")
    print("this agent can run the mesobatch executor bundle" if not failed
          else "this agent cannot run the mesobatch executor bundle (see FAIL above)")
    return 1 if failed else 0
