"""condor_submit, condor_q, condor_history, condor_rm, condor_hold, condor_release and
condor_status of the HTCondor fake (see this package's docstring for the pages followed).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from typing import Any

from ..hpcfake.cli import CommandError, run, store_from_env
from ..hpcfake.runner import launch, wake
from ..hpcfake.store import (
    FINISHED,
    HELD,
    PENDING,
    RUNNING,
    Job,
    Node,
    Store,
    env_float,
    new_job,
    purge,
)
from .classad import ClassAdError, compile_expr, literal, matches

VERSION = "$CondorVersion: 23.0.6 2024-03-14 BuildID: 721123 PackageID: 23.0.6-1 $"

# JobStatus values (HTCondor manual, "ClassAd Job Attributes": JobStatus)
IDLE, RUNNING_STATUS, REMOVED, COMPLETED, HELD_STATUS = 1, 2, 3, 4, 5

# HoldReasonCode values (same page: HoldReasonCode)
HOLD_USER = 1
HOLD_FAILED_TO_CREATE_PROCESS = 6
HOLD_SUBMITTED_ON_HOLD = 15
HOLD_OUT_OF_RESOURCES = 34
HOLD_DURATION_EXCEEDED = 46

MEMORY_UNITS = {"": None, "K": 1 / 1024, "KB": 1 / 1024, "M": 1, "MB": 1, "G": 1024,
                "GB": 1024, "T": 1024**2, "TB": 1024**2}


def store() -> Store:
    return store_from_env("FAKE_CONDOR_DIR", "fake-htcondor")


def node() -> Node:
    return Node("FAKE_CONDOR")


def schedd() -> str:
    return os.environ.get("FAKE_CONDOR_SCHEDD") or node().name


def history_keep() -> float:
    """How long condor_history still finds a job (the history file's rotation; default:
    as long as the store lives)."""
    return env_float("FAKE_CONDOR_HISTORY_KEEP", float("inf"))


def user() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "root"


# ----------------------------------------------------------------------------- condor_submit


def _parse_description(text: str) -> list[tuple[str, str, str]]:
    """(kind, key, value) lines: kind is 'cmd', 'attr' (+Attr / My.Attr) or 'queue'."""
    out: list[tuple[str, str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"queue\b\s*(.*)", line, re.IGNORECASE)
        if m:
            out.append(("queue", "queue", m.group(1).strip()))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CommandError(f"ERROR: on Line {len(out) + 1} of submit file: \n"
                               f"Submit:0:Parse error: {line}", 1)
        key, value = key.strip(), value.strip()
        if key.startswith("+"):
            out.append(("attr", key[1:], value))
        elif key.lower().startswith("my."):
            out.append(("attr", key[3:], value))
        else:
            out.append(("cmd", key.lower(), value))
    return out


def _expand(value: str, macros: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return macros.get(m.group(1).lower(), "")

    for _ in range(5):
        new = re.sub(r"\$\(([A-Za-z0-9_.]+)\)", sub, value)
        if new == value:
            break
        value = new
    return value


def _memory_mb(value: str, default_unit_mb: float) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", value)
    if not m or m.group(2).upper() not in MEMORY_UNITS:
        raise ValueError(value)
    factor = MEMORY_UNITS[m.group(2).upper()] or default_unit_mb
    return int(-(-float(m.group(1)) * factor // 1))


def _bool(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "1")


def _arguments(value: str) -> list[str]:
    value = value.strip()
    if value.startswith('"') and value.endswith('"'):  # the new syntax
        return shlex.split(value[1:-1].replace('""', '\\"'))
    return value.split()


def _environment(value: str) -> dict[str, str]:
    value = value.strip()
    if value.startswith('"') and value.endswith('"'):
        items = shlex.split(value[1:-1])
    else:
        items = value.split(";")
    env = {}
    for item in items:
        k, _, v = item.partition("=")
        if k.strip():
            env[k.strip()] = v
    return env


KNOWN = {"universe", "executable", "arguments", "output", "error", "log", "input",
         "initialdir", "request_cpus", "request_memory", "request_disk", "request_gpus",
         "getenv", "environment", "hold", "allowed_job_duration", "batch_name",
         "job_batch_name", "requirements", "should_transfer_files", "when_to_transfer_output",
         "transfer_executable", "notification", "max_retries", "periodic_remove",
         "periodic_hold", "periodic_release", "leave_in_queue", "rank", "priority",
         "accounting_group", "stream_output", "stream_error"}


def condor_submit(argv: list[str]) -> int:
    terse = False
    appended: list[str] = []
    files: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-terse",):
            terse = True
        elif arg in ("-a", "-append"):
            i += 1
            appended.append(argv[i])
        elif arg in ("-verbose", "-v", "-disable"):
            pass
        elif arg.startswith("-") and arg != "-":
            raise CommandError(f"{arg} is not a valid option to condor_submit\nUsage: "
                               "condor_submit [options] [submit-file]", 1)
        else:
            files.append(arg)
        i += 1
    if files and files[0] != "-":
        try:
            with open(files[0]) as f:
                text = f.read()
        except OSError:
            raise CommandError(f"ERROR: Failed to open command file ({files[0]})", 1) from None
    else:
        text = sys.stdin.read()
    lines = _parse_description(text)
    if appended:
        queue_at = next((n for n, line in enumerate(lines) if line[0] == "queue"), len(lines))
        lines[queue_at:queue_at] = _parse_description("\n".join(appended))
    if not any(kind == "queue" for kind, _, _ in lines):
        raise CommandError("\nERROR: No 'queue' statement in submit file", 1)
    st = store()
    node_ = node()
    submit_dir = os.getcwd()
    to_launch: list[str] = []
    warnings: list[str] = []
    with st.locked() as state:
        purge(state, history_keep())
        cluster = int(state["next_id"])
        proc = 0
        commands: dict[str, str] = {}
        attrs: dict[str, str] = {}
        jobs: list[Job] = []
        for kind, key, value in lines:
            if kind == "cmd":
                commands[key] = value
                if key not in KNOWN:
                    warnings.append(f"WARNING: the line '{key} = {value}' was unused by "
                                    "condor_submit. Is it a typo?")
            elif kind == "attr":
                attrs[key] = value
            else:
                count_text = value.split()[0] if value else "1"
                if not count_text.isdigit():
                    raise CommandError(f"ERROR: queue statement '{value}' is not supported by "
                                       "this fake (only 'queue [N]')", 1)
                for _ in range(int(count_text)):
                    jobs.append(
                        _make_job(cluster, proc, commands, attrs, submit_dir, node_, st))
                    proc += 1
        if not jobs:
            raise CommandError("ERROR: no jobs queued", 1)
        state["next_id"] = cluster + 1
        for job in jobs:
            state["jobs"][job["id"]] = job
            to_launch.append(job["id"])
    delay = env_float("FAKE_CONDOR_START_DELAY", 0.0)
    for key in to_launch:
        launch(st, key, node_, start_delay=delay)
    for w in warnings:
        sys.stderr.write(w + "\n")
    n = len(to_launch)
    if terse:
        print(f"{cluster}.0 - {cluster}.{n - 1}")
    else:
        print("Submitting job(s)" + "." * n)
        print(f"{n} job(s) submitted to cluster {cluster}.")
    return 0


def _make_job(cluster: int, proc: int, commands: dict[str, str], attrs: dict[str, str],
              submit_dir: str, node_: Node, st: Store) -> Job:
    macros = {"cluster": str(cluster), "clusterid": str(cluster), "process": str(proc),
              "procid": str(proc), "node": "0"}
    macros.update({k: v for k, v in commands.items()})

    def cmd(name: str, default: str | None = None) -> str | None:
        value = commands.get(name)
        return _expand(value, macros) if value is not None else default

    universe = (cmd("universe") or "vanilla").lower()
    if universe not in ("vanilla", "local"):
        raise CommandError(f"ERROR: universe '{universe}' is not supported by this fake", 1)
    iwd = cmd("initialdir") or submit_dir
    iwd = iwd if os.path.isabs(iwd) else os.path.join(submit_dir, iwd)
    executable = cmd("executable")
    if not executable:
        raise CommandError("ERROR: No 'executable' parameter was provided", 1)
    exe = executable if os.path.isabs(executable) else os.path.join(iwd, executable)
    if not os.path.exists(exe):
        raise CommandError(f"\nERROR: Executable file {exe} does not exist", 1)

    def path(name: str) -> str | None:
        value = cmd(name)
        if value is None or value == "/dev/null":
            return None
        return value if os.path.isabs(value) else os.path.join(iwd, value)

    try:
        cpus = int(cmd("request_cpus") or "1")
        memory_mb = _memory_mb(cmd("request_memory") or "0", 1)
        disk_kb = 0
        if cmd("request_disk"):
            disk_kb = int(_memory_mb(cmd("request_disk") or "0", 1 / 1024) * 1024)
        gpus = int(cmd("request_gpus") or "0")
        duration_text = cmd("allowed_job_duration")
        duration = float(duration_text) if duration_text else None
    except ValueError as exc:
        raise CommandError(f"\nERROR: invalid value {exc}", 1) from None
    env_file = None
    if _bool(cmd("getenv") or "false"):
        env_file = str(st.dir / "spool" / f"{cluster}.env.json")
        if proc == 0 or not os.path.exists(env_file):
            env_file = st.write_env(str(cluster), dict(os.environ))
        env: dict[str, str] = {}
    else:
        env = {"PATH": "/usr/bin:/bin"}
    env.update(_environment(cmd("environment") or ""))
    env["_CONDOR_SCRATCH_DIR"] = iwd
    env["_CONDOR_SLOT"] = "slot1_1"
    now = time.time()
    ad: dict[str, Any] = {
        "ClusterId": cluster, "ProcId": proc, "Owner": user(), "User": f"{user()}@{schedd()}",
        "Cmd": exe, "Args": " ".join(_arguments(cmd("arguments") or "")), "Iwd": iwd,
        "Out": path("output") or "/dev/null", "Err": path("error") or "/dev/null",
        "In": path("input") or "/dev/null", "JobUniverse": 5 if universe == "vanilla" else 12,
        "QDate": int(now), "RequestCpus": cpus, "RequestMemory": memory_mb,
        "RequestDisk": disk_kb, "RequestGPUs": gpus,
        "GlobalJobId": f"{schedd()}#{cluster}.{proc}#{int(now)}", "NumJobStarts": 0,
    }
    if path("log"):
        ad["UserLog"] = path("log")
    if duration is not None:
        ad["AllowedJobDuration"] = int(duration)
    if cmd("batch_name") or cmd("job_batch_name"):
        ad["JobBatchName"] = cmd("batch_name") or cmd("job_batch_name")
    for key, value in attrs.items():
        try:
            ad[key] = literal(_expand(value, macros))
        except ClassAdError:
            raise CommandError(f"ERROR: Parse error in expression: \n\t{key} = {value}", 1) \
                from None
    held = _bool(cmd("hold") or "false")
    key = f"{cluster}.{proc}"
    job = new_job(
        key, name=str(ad.get("JobBatchName") or exe), command=[exe, *_arguments(cmd("arguments")
                                                                              or "")],
        cwd=iwd, env=env, env_file=env_file, stdout=path("output"), stderr=path("error"),
        cores=cpus, gpus=gpus,
        mem_request=memory_mb * 2**20,
        mem_limit=memory_mb * 2**20 if memory_mb else None, run_limit=duration, held=held,
        kill_signals=["SIGTERM", "SIGKILL"],
        kill_interval=env_float("FAKE_CONDOR_KILL_DELAY", 10.0),
        extra={
            "ad": ad, "cluster": cluster, "proc": proc, "append_output": False,
            "kill_plans": {"hold": ["SIGKILL"], "memlimit": ["SIGKILL"], "runlimit": ["SIGKILL"]},
            "hold_on": {
                "memlimit": {"code": HOLD_OUT_OF_RESOURCES, "reason": (
                    "Error from slot1_1@{host}: Job has gone over cgroup memory limit of "
                    "{limit_mb} megabytes. Last measured usage: {rss_mb} megabytes.  Consider "
                    "resubmitting with a higher request_memory.")},
                "runlimit": {"code": HOLD_DURATION_EXCEEDED, "reason": (
                    "The job exceeded allowed job duration of {limit} seconds.")},
                "exec": {"code": HOLD_FAILED_TO_CREATE_PROCESS, "subcode": 13, "reason": (
                    "Error from slot1_1@{host}: Failed to execute '" + exe + "': {error}")},
            },
        },
    )
    if held:
        job["extra"]["hold"] = {"code": HOLD_SUBMITTED_ON_HOLD, "subcode": 0,
                                "reason": "submitted on hold at user's request", "since": now}
    return job


# ----------------------------------------------------------------------------------- ads


def job_status(job: Job) -> int:
    if job["state"] == PENDING:
        return IDLE
    if job["state"] == HELD:
        return HELD_STATUS
    if job["state"] == RUNNING:
        return REMOVED if job.get("kill_requested") == "removed" else RUNNING_STATUS
    return REMOVED if job["kill_reason"] == "removed" else COMPLETED


def ad_of(job: Job) -> dict[str, Any]:
    ad = dict(job["extra"]["ad"])
    status = job_status(job)
    ad["JobStatus"] = status
    ad["NumJobStarts"] = job["starts"]
    since: Any = (
        (job["extra"].get("hold") or {}).get("since") if status == HELD_STATUS else
        (job["end_time"] if job["state"] == FINISHED else job["start_time"])
    )
    ad["EnteredCurrentStatus"] = int(since or ad["QDate"])
    if job["max_rss"]:
        ad["ResidentSetSize"] = int(job["max_rss"]) // 1024
        ad["MemoryUsage"] = -(-int(job["max_rss"]) // 2**20)
    if job["start_time"]:
        ad["JobStartDate"] = int(ad.get("JobStartDate") or job["start_time"])
        ad["JobCurrentStartDate"] = int(job["start_time"])
        ad["LastRemoteHost"] = f"slot1_1@{job['host']}"
    if job["state"] == RUNNING:
        ad["RemoteHost"] = f"slot1_1@{job['host']}"
        ad["JobRunCount"] = job["starts"]
    if status == HELD_STATUS:
        hold = job["extra"].get("hold") or {}
        ad["HoldReason"] = hold.get("reason", "")
        ad["HoldReasonCode"] = hold.get("code", HOLD_USER)
        ad["HoldReasonSubCode"] = hold.get("subcode", 0)
    if job["state"] == FINISHED:
        ad["CompletionDate"] = int(job["end_time"]) if status == COMPLETED else 0
        if job["start_time"]:
            ad["RemoteWallClockTime"] = float(int(job["end_time"] - job["start_time"]))
        rc = job["returncode"]
        if status == COMPLETED and rc is not None:
            ad["ExitBySignal"] = rc < 0
            if rc < 0:
                ad["ExitSignal"] = -rc
            else:
                ad["ExitCode"] = rc
        if status == REMOVED:
            ad["RemoveReason"] = _remove_reason(job)
    if status == REMOVED and job["state"] == RUNNING:
        ad["RemoveReason"] = _remove_reason(job)
    return ad


def _remove_reason(job: Job) -> str:
    """condor_rm -reason's text, or the default one."""
    return str(job["extra"].get("remove_reason") or f"via condor_rm (by user {user()})")


def _format(ads: list[dict[str, Any]]) -> str:
    """condor_q/condor_history -json: an array of ads, attributes sorted case-insensitively,
    ads separated by a line holding a comma; nothing at all when no ad matches."""
    if not ads:
        return ""
    blocks = []
    for ad in ads:
        items = sorted(ad.items(), key=lambda kv: kv[0].lower())
        body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in items)
        blocks.append("{\n" + body + "\n}")
    return "[\n" + "\n,\n".join(blocks) + "\n]\n"


def _select_args(argv: list[str], command: str) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {"json": False, "constraint": None, "attributes": None,
                            "limit": None, "hold": False}
    ids: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-json":
            opts["json"] = True
        elif arg in ("-constraint", "-const"):
            i += 1
            opts["constraint"] = argv[i]
        elif arg in ("-attributes", "-attribute", "-attr"):
            i += 1
            opts["attributes"] = [a.strip() for a in argv[i].split(",") if a.strip()]
        elif arg in ("-limit", "-match", "-l") and command == "condor_history":
            i += 1
            opts["limit"] = int(argv[i])
        elif arg in ("-allusers", "-nobatch", "-all", "-wide", "-forwards", "-backwards"):
            pass
        elif arg in ("-hold", "-held"):
            opts["hold"] = True
        elif arg.startswith("-"):
            raise CommandError(f"Error: unrecognized argument {arg}\nUsage: {command} [options]"
                               " [cluster | cluster.proc | owner]...", 1)
        else:
            ids.append(arg)
        i += 1
    return opts, ids


def _id_match(ids: list[str]) -> Any:
    if not ids:
        return lambda job: True

    def match(job: Job) -> bool:
        for raw in ids:
            if "." in raw:
                if raw == job["id"]:
                    return True
            elif raw.isdigit():
                if int(raw) == job["extra"]["cluster"]:
                    return True
            elif raw == job["user"]:
                return True
        return False
    return match


def _query(argv: list[str], command: str, finished: bool) -> int:
    opts, ids = _select_args(argv, command)
    try:
        constraint = compile_expr(opts["constraint"]) if opts["constraint"] else None
    except ClassAdError as exc:
        raise CommandError(f"Error: {exc}", 1) from None
    by_id = _id_match(ids)
    with store().locked() as state:
        purge(state, history_keep())
        jobs = [j for j in state["jobs"].values() if (j["state"] == FINISHED) == finished]
    jobs.sort(key=lambda j: (j["extra"]["cluster"], j["extra"]["proc"]))
    if finished:  # condor_history reads the history file backwards: newest first
        jobs.sort(key=lambda j: j["end_time"] or 0, reverse=True)
    ads = []
    for job in jobs:
        ad = ad_of(job)
        if not by_id(job) or (constraint and not matches(constraint, ad)):
            continue
        if opts["hold"] and ad["JobStatus"] != HELD_STATUS:
            continue
        if opts["attributes"]:
            wanted = {a.lower() for a in opts["attributes"]}
            ad = {k: v for k, v in ad.items() if k.lower() in wanted}
        ads.append(ad)
        if opts["limit"] is not None and len(ads) >= opts["limit"]:
            break
    if opts["json"]:
        sys.stdout.write(_format(ads))
        return 0
    if finished:
        print(" ID     OWNER          SUBMITTED   RUN_TIME     ST  COMPLETED   CMD")
        for ad in ads:
            print(f" {ad.get('ClusterId')}.{ad.get('ProcId')}  {ad.get('Owner', '')}  "
                  f"{'C' if ad.get('JobStatus') == COMPLETED else 'X'}  {ad.get('Cmd', '')}")
        return 0
    print(f"\n\n-- Schedd: {schedd()} : <127.0.0.1:9618?... @ "
          f"{time.strftime('%m/%d/%y %H:%M:%S')}")
    print(" ID        OWNER            SUBMITTED     RUN_TIME ST PRI SIZE CMD")
    letters = {IDLE: "I", RUNNING_STATUS: "R", REMOVED: "X", COMPLETED: "C", HELD_STATUS: "H"}
    for ad in ads:
        print(f"{ad.get('ClusterId')}.{ad.get('ProcId'):<8} {ad.get('Owner', ''):<16} "
              f"{letters.get(ad.get('JobStatus', 0), '?')}  {ad.get('Cmd', '')}")
    return 0


# ----------------------------------------------------------------------------- rm / hold


def _act(argv: list[str], command: str) -> int:
    reason_text: str | None = None
    constraint_text: str | None = None
    ids: list[str] = []
    everything = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-constraint", "-const"):
            i += 1
            constraint_text = argv[i]
        elif arg == "-reason":
            i += 1
            reason_text = argv[i]
        elif arg == "-all":
            everything = True
        elif arg.startswith("-"):
            raise CommandError(f"{command}: unrecognized argument {arg}", 1)
        else:
            ids.append(arg)
        i += 1
    if not ids and constraint_text is None and not everything:
        raise CommandError(f"Usage: {command} [options] [cluster | cluster.proc | user | "
                           "-constraint expr | -all] ...", 1)
    try:
        constraint = compile_expr(constraint_text) if constraint_text else None
    except ClassAdError as exc:
        raise CommandError(f"Error: {exc}", 1) from None
    verb = {"condor_rm": "marked for removal", "condor_hold": "held",
            "condor_release": "released"}[command]
    noun = {"condor_rm": "remove", "condor_hold": "hold", "condor_release": "release"}[command]
    status = 0
    woken: list[Job] = []
    out: list[str] = []
    with store().locked() as state:
        queue = [j for j in state["jobs"].values() if j["state"] != FINISHED]
        groups: list[tuple[str, list[Job]]] = []
        if everything:
            groups.append(("all", queue))
        if constraint is not None:
            groups.append((f"constraint ({constraint_text})",
                           [j for j in queue if matches(constraint, ad_of(j))]))
        for raw in ids:
            groups.append((raw, [j for j in queue if _id_match([raw])(j)]))
        for label, jobs in groups:
            changed = [j for j in jobs if _apply(j, command, reason_text)]
            woken.extend(changed)
            if label == "all":
                out.append(f"All jobs {verb}." if changed or jobs else "")
            elif label.startswith("constraint"):
                if jobs:
                    out.append(f"All jobs matching {label} have been {verb}")
                else:
                    sys.stderr.write(f"Couldn't find/{noun} all jobs matching {label}\n")
                    status = 1
            elif "." in label:
                if jobs:
                    out.append(f"Job {label} {verb}")
                else:
                    sys.stderr.write(f"Job {label} not found\n")
                    status = 1
            elif jobs:
                out.append(f"All jobs in cluster {label} have been {verb}")
            else:
                sys.stderr.write(f"Couldn't find/{noun} all jobs in cluster {label}\n")
                status = 1
    for j in woken:
        wake(j)
    for line in out:
        if line:
            print(line)
    return status


def _apply(job: Job, command: str, reason: str | None) -> bool:
    now = time.time()
    if command == "condor_rm":
        if reason:
            job["extra"]["remove_reason"] = reason
        if job["state"] == RUNNING:
            job["kill_requested"] = "removed"
        else:
            job.update(state=FINISHED, end_time=now, kill_reason="removed")
        return True
    if command == "condor_hold":
        if job["state"] == HELD:
            return False
        job["extra"]["hold"] = {"code": HOLD_USER, "subcode": 0, "since": now,
                                "reason": reason or f"via condor_hold (by user {user()})"}
        if job["state"] == RUNNING:
            job["kill_requested"] = "hold"
        job["state"] = HELD
        return True
    if job["state"] != HELD:
        return False
    job["state"] = PENDING
    job["extra"].pop("hold", None)
    return True


# ----------------------------------------------------------------------------- status


def condor_status(argv: list[str]) -> int:
    as_json = "-json" in argv
    n = node()
    with store().locked() as state:
        running = [j for j in state["jobs"].values() if j["state"] == RUNNING]
    used = sum(int(j["cores"]) for j in running)
    ad = {
        "Name": f"slot1@{n.name}", "Machine": n.name, "SlotType": "Partitionable",
        "State": "Unclaimed", "Activity": "Idle", "Cpus": n.cores - used,
        "TotalCpus": float(n.cores), "TotalSlotCpus": n.cores,
        "Memory": n.memory // 2**20 - sum(int(j["mem_request"]) for j in running) // 2**20,
        "TotalMemory": n.memory // 2**20, "TotalSlotMemory": n.memory // 2**20,
        "GPUs": n.gpus, "TotalGPUs": n.gpus, "Disk": 100 * 2**20,
        "MyAddress": "<127.0.0.1:9618?addrs=127.0.0.1-9618>", "OpSys": "LINUX",
        "Arch": "X86_64", "LoadAvg": round(os.getloadavg()[0] / max(n.cores, 1), 2),
        "CondorVersion": VERSION, "Start": True, "ChildCpus": [int(j["cores"]) for j in running],
    }
    if as_json:
        sys.stdout.write(_format([ad]))
        return 0
    print("Name               OpSys      Arch   State     Activity LoadAv Mem    ActvtyTime")
    print(f"{ad['Name']:<19}LINUX      X86_64 Unclaimed Idle     {ad['LoadAvg']:.3f} "
          f"{ad['Memory']:<6} 0+00:00:00")
    return 0


COMMANDS = {
    "condor_submit": condor_submit,
    "condor_q": lambda argv: _query(argv, "condor_q", finished=False),
    "condor_history": lambda argv: _query(argv, "condor_history", finished=True),
    "condor_rm": lambda argv: _act(argv, "condor_rm"),
    "condor_hold": lambda argv: _act(argv, "condor_hold"),
    "condor_release": lambda argv: _act(argv, "condor_release"),
    "condor_status": condor_status,
}


def main(name: str, argv: list[str]) -> int:
    """Entry point of ``bin/<name>``."""
    if argv == ["-version"]:
        print(VERSION)
        print("$CondorPlatform: X86_64-Debian_12 $")
        return 0
    return run(COMMANDS[name], argv)
