"""bsub, bjobs, bkill, bstop, bresume, bhosts, lshosts and lsid of the LSF fake.

Formats, messages and exit statuses follow the IBM Spectrum LSF 10.1 pages listed in this
package's docstring. ``main(name, argv)`` is what each program in ``bin/`` calls.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ..hpcfake.cli import CommandError, run, split_option_args, store_from_env
from ..hpcfake.runner import launch, wake
from ..hpcfake.store import (
    FINISHED,
    HELD,
    PENDING,
    RUNNING,
    Job,
    Node,
    State,
    Store,
    env_float,
    new_job,
    purge,
)

VERSION = "IBM Spectrum LSF Standard 10.1.0.13, Apr 15 2022"
BAD = 255  #: LSF commands exit with -1 (255) on errors

# Termination reasons (lsf_admin/termination_reasons_lsf.html): keyword -> bjobs' words.
TERM_REASONS = {
    "TERM_ADMIN": "job killed by root or LSF administrator",
    "TERM_BUCKET_KILL": "job killed with bkill -b",
    "TERM_CHKPNT": "job killed after checkpointing",
    "TERM_CPULIMIT": "job killed after reaching LSF CPU usage limit",
    "TERM_CWD_NOTEXIST": "current working directory is not accessible or does not exist on the "
    "execution host",
    "TERM_DEADLINE": "job killed after deadline expires",
    "TERM_EXTERNAL_SIGNAL": "job killed by a signal external to LSF",
    "TERM_FORCE_ADMIN": "job killed by root or LSF administrator without time for cleanup",
    "TERM_FORCE_OWNER": "job killed by owner without time for cleanup",
    "TERM_LOAD": "job killed after load exceeds threshold",
    "TERM_MEMLIMIT": "job killed after reaching LSF memory usage limit",
    "TERM_OTHER": "member of a chunk job in WAIT state killed and requeued after being switched "
    "to another queue",
    "TERM_OWNER": "job killed by owner",
    "TERM_PREEMPT": "job killed after preemption",
    "TERM_PROCESSLIMIT": "job killed after reaching LSF process limit",
    "TERM_REMOVE_HUNG_JOB": "job removed from LSF system after reaching a job runtime limit",
    "TERM_REQUEUE_ADMIN": "job killed and requeued by root or LSF administrator",
    "TERM_REQUEUE_OWNER": "job killed and requeued by owner",
    "TERM_RUNLIMIT": "job killed after reaching LSF run time limit",
    "TERM_SWAP": "job killed after reaching LSF swap usage limit",
    "TERM_THREADLIMIT": "job killed after reaching LSF thread limit",
    "TERM_UNKNOWN": "LSF cannot determine a termination reason",
    "TERM_WINDOW": "job killed after queue run window closed",
    "TERM_ZOMBIE": "job exited while LSF is not available",
}
#: the runner's generic kill reasons -> LSF keywords
KILL_KEYWORDS = {
    "owner": "TERM_OWNER",
    "force": "TERM_FORCE_OWNER",
    "memlimit": "TERM_MEMLIMIT",
    "runlimit": "TERM_RUNLIMIT",
}
UNITS = {"K": 1, "KB": 1, "M": 2, "MB": 2, "G": 3, "GB": 3, "T": 4, "TB": 4, "P": 5, "PB": 5,
         "E": 6, "EB": 6, "Z": 7, "ZB": 7}

BSUB_USAGE = (
    "Usage: bsub [-h] [-V] [-H] [-I | -Ip | -Is] [-K] [-n num_tasks] [-q queue_name ...]\n"
    "            [-J job_name] [-R \"res_req\"] [-M mem_limit] [-W [hour:]minute]\n"
    "            [-P project_name] [-gpu \"num=num_gpus\"] [-o out_file] [-e err_file]\n"
    "            [-oo out_file] [-eo err_file] [-cwd \"current_working_directory\"]\n"
    "            [command [argument ...]]"
)


def store() -> Store:
    return store_from_env("FAKE_LSF_DIR", "fake-lsf")


def node() -> Node:
    return Node("FAKE_LSF")


def queues() -> list[str]:
    return [q for q in os.environ.get("FAKE_LSF_QUEUES", "normal").split(",") if q]


def unit_for_limits() -> str | None:
    """LSF_UNIT_FOR_LIMITS: the environment first (tests), then $LSF_ENVDIR/lsf.conf."""
    value = os.environ.get("LSF_UNIT_FOR_LIMITS")
    if value:
        return value.strip().upper()
    envdir = os.environ.get("LSF_ENVDIR")
    if envdir:
        try:
            text = Path(envdir, "lsf.conf").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            m = re.match(r"\s*LSF_UNIT_FOR_LIMITS\s*=\s*(\w+)", line)
            if m:
                return m.group(1).upper()
    return None


def clean_period() -> float:
    """CLEAN_PERIOD of lsb.params: how long bjobs still shows finished jobs (default 1 h)."""
    return env_float("FAKE_LSF_CLEAN_PERIOD", 3600.0)


def _to_bytes(value: str, default_unit: str, option: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*!?\s*", value)
    if not m or (m.group(2) and m.group(2).upper() not in UNITS):
        raise CommandError(f"Bad argument for option {option}. Job not submitted.", BAD)
    unit = m.group(2).upper() or default_unit
    return int(float(m.group(1)) * 1024 ** UNITS[unit])


# ----------------------------------------------------------------------------------- bsub


def bsub(argv: list[str]) -> int:
    with_value = {"-J", "-n", "-R", "-M", "-W", "-q", "-P", "-gpu", "-o", "-e", "-oo", "-eo",
                  "-cwd", "-env", "-app", "-G", "-m", "-x"}
    opts, command = split_option_args(argv, with_value, {"-H", "-V", "-h", "-B", "-N", "-r"},
                                      BSUB_USAGE, BAD)
    if "-h" in opts:
        sys.stderr.write(BSUB_USAGE + "\n")
        return 0
    if "-V" in opts:
        sys.stderr.write(VERSION + "\n")
        return 0
    script_text: str | None = None
    if not command:
        script_text = sys.stdin.read()
        if not script_text.strip():
            raise CommandError("No command is specified. Job not submitted.", BAD)
        directives = _bsub_directives(script_text)
        d_opts, _ = split_option_args(directives, with_value, {"-H", "-B", "-N", "-r"},
                                      BSUB_USAGE, BAD)
        for key, values in d_opts.items():
            opts.setdefault(key, values)
    return _submit(opts, command, script_text)


def _bsub_directives(script: str) -> list[str]:
    words: list[str] = []
    for line in script.splitlines()[1:] if script.startswith("#!") else script.splitlines():
        stripped = line.strip()
        if stripped.startswith("#BSUB"):
            words.extend(shlex.split(stripped[len("#BSUB"):]))
        elif stripped and not stripped.startswith("#"):
            break
    return words


def _last(opts: dict[str, list[str]], key: str) -> str | None:
    values = opts.get(key)
    return values[-1] if values else None


def _submit(opts: dict[str, list[str]], command: list[str], script_text: str | None) -> int:
    known = queues()
    queue = _last(opts, "-q")
    if queue is not None and queue not in known:
        raise CommandError(f"{queue}: No such queue. Job not submitted.", BAD)
    default_queue = queue is None
    queue = queue or known[0]
    cores = 1
    if (n := _last(opts, "-n")) is not None:
        if not n.isdigit() or int(n) < 1:
            raise CommandError(f"{n}: Bad argument for option -n. Job not submitted.", BAD)
        cores = int(n)
    unit = unit_for_limits()
    mem_limit = None
    if (m := _last(opts, "-M")) is not None:
        mem_limit = _to_bytes(m, unit or "KB", "-M")
    mem_request = 0
    for req in opts.get("-R", []):
        for rusage in re.findall(r"rusage\[([^\]]*)\]", req):
            for item in rusage.split(":"):
                key, _, value = item.partition("=")
                if key.strip() == "mem":
                    mem_request = _to_bytes(value, unit or "MB", "-R")
        if re.search(r"span\[(?!hosts=1\]|ptile=)", req):
            raise CommandError(f"{req}: Bad resource requirement syntax. Job not submitted.", BAD)
    run_limit = None
    if (w := _last(opts, "-W")) is not None:
        m2 = re.fullmatch(r"(?:(\d+):)?(\d+)", w)
        if not m2:
            raise CommandError(f"{w}: Bad RUNLIMIT specification. Job not submitted.", BAD)
        minutes = int(m2.group(1) or 0) * 60 + int(m2.group(2))
        run_limit = minutes * env_float("FAKE_LSF_SECONDS_PER_MINUTE", 60.0)
    gpus = 0
    if (g := _last(opts, "-gpu")) is not None:
        m3 = re.search(r"num=(\d+)", g)
        if g != "-" and not m3:
            raise CommandError(f"{g}: Bad GPU requirement syntax. Job not submitted.", BAD)
        gpus = int(m3.group(1)) if m3 else 1
    cwd = _last(opts, "-cwd") or os.getcwd()
    if not os.path.isdir(cwd):
        raise CommandError(f"{cwd}: No such directory. Job not submitted.", BAD)
    name_spec = _last(opts, "-J")
    indexes: list[int] = []
    base_name = name_spec or (" ".join(command) if command else "")
    if name_spec and (am := re.fullmatch(r"(.*)\[([0-9,:\-]+)\](?:%\d+)?", name_spec)):
        base_name = am.group(1)
        indexes = _array_indexes(am.group(2))
    st = store()
    node_ = node()
    with st.locked() as state:
        purge(state, clean_period())
        job_id = int(state["next_id"])
        state["next_id"] = job_id + 1
        spool = st.dir / "spool"
        spool.mkdir(exist_ok=True)
        if script_text is not None:
            path = spool / f"{job_id}.script"
            path.write_text(script_text)
            argv = ["/bin/sh", str(path)]
            if not name_spec:
                base_name = (script_text.splitlines() or [""])[-1][:40]
        else:
            argv = ["/bin/sh", "-c", " ".join(command)]
        keys = []
        env_file = st.write_env(str(job_id), dict(os.environ))
        for index in indexes or [0]:
            key = f"{job_id}[{index}]" if indexes else str(job_id)
            env: dict[str, str] = {}
            env.update(LSB_JOBID=str(job_id), LSB_JOBINDEX=str(index), LSB_QUEUE=queue,
                       LSB_JOBNAME=f"{base_name}[{index}]" if indexes else base_name,
                       LSB_HOSTS=" ".join([node_.name] * cores), LSB_MAX_NUM_PROCESSORS=str(cores))
            terminate = env_float("FAKE_LSF_TERMINATE_INTERVAL", 10.0)
            job = new_job(
                key, name=env["LSB_JOBNAME"], command=argv, cwd=cwd, env=env, env_file=env_file,
                stdout=_output_path(opts, "o", job_id, index, cwd),
                stderr=_output_path(opts, "e", job_id, index, cwd),
                cores=cores, gpus=gpus, mem_request=mem_request, mem_limit=mem_limit,
                run_limit=run_limit, held="-H" in opts,
                kill_signals=["SIGINT", "SIGTERM", "SIGKILL"], kill_interval=terminate,
                extra={
                    "job_id": job_id, "index": index, "queue": queue,
                    "project": _last(opts, "-P") or "default",
                    "append_output": not ("-oo" in opts or "-eo" in opts),
                    "kill_plans": {"runlimit": ["SIGUSR2", "SIGINT", "SIGTERM", "SIGKILL"],
                                   "force": ["SIGKILL"]},
                    "from_host": node_.name,
                },
            )
            if not node_.can_ever_fit(job):
                job["extra"]["never_fits"] = True
            state["jobs"][key] = job
            keys.append(key)
    delay = env_float("FAKE_LSF_START_DELAY", 0.0)
    for key in keys:
        launch(st, key, node_, start_delay=delay)
    where = "default queue" if default_queue else "queue"
    print(f"Job <{job_id}> is submitted to {where} <{queue}>.")
    return 0


def _array_indexes(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not m:
            raise CommandError(f"{spec}: Bad job name. Job not submitted.", BAD)
        start = int(m.group(1))
        end = int(m.group(2) or start)
        step = int(m.group(3) or 1)
        if start < 1 or end < start:
            raise CommandError(f"{spec}: Bad job name. Job not submitted.", BAD)
        out.extend(range(start, end + 1, step))
    return out


def _output_path(opts: dict[str, list[str]], kind: str, job_id: int, index: int,
                 cwd: str) -> str | None:
    value = _last(opts, f"-{kind}o") or _last(opts, f"-{kind}")
    if value is None:
        if kind == "e":
            return None  # stderr joins stdout (or, with no -o, the mail LSF would send)
        return None
    value = value.replace("%J", str(job_id)).replace("%I", str(index))
    path = value if os.path.isabs(value) else os.path.join(cwd, value)
    if os.path.isdir(path):
        path = os.path.join(path, f"{job_id}.{'out' if kind == 'o' else 'err'}")
    return path


# ----------------------------------------------------------------------------------- bjobs

#: bjobs -o field names (and aliases) this fake knows -> JSON keys
FIELDS = {
    "jobid": "JOBID", "id": "JOBID", "jobindex": "JOBINDEX", "stat": "STAT",
    "exit_code": "EXIT_CODE", "exit_reason": "EXIT_REASON", "job_name": "JOB_NAME",
    "name": "JOB_NAME", "user": "USER", "queue": "QUEUE", "proj_name": "PROJ_NAME",
    "proj": "PROJ_NAME", "project": "PROJ_NAME", "from_host": "FROM_HOST",
    "exec_host": "EXEC_HOST", "submit_time": "SUBMIT_TIME", "start_time": "START_TIME",
    "finish_time": "FINISH_TIME", "pend_reason": "PEND_REASON", "max_mem": "MAX_MEM",
    "memlimit": "MEMLIMIT", "runtimelimit": "RUNTIMELIMIT", "nreq_slot": "NREQ_SLOT",
    "slots": "NALLOC_SLOT", "nalloc_slot": "NALLOC_SLOT", "run_time": "RUN_TIME",
    "cpu_used": "CPU_USED", "pids": "PIDS", "exec_cwd": "EXEC_CWD", "output_file": "OUTPUT_FILE",
    "error_file": "ERROR_FILE", "command": "COMMAND", "gpu_num": "GPU_NUM",
}


def stat(job: Job) -> str:
    if job["state"] == PENDING:
        return "PEND"
    if job["state"] == HELD:
        return "PSUSP"
    if job["state"] == RUNNING:
        return "RUN"
    if job["kill_reason"] is None and job["returncode"] == 0:
        return "DONE"
    return "EXIT"


def exit_code(job: Job) -> str:
    if stat(job) != "EXIT" or job["returncode"] is None:
        return "127" if job["extra"].get("exec_error") else ""
    rc = int(job["returncode"])
    return str(128 - rc if rc < 0 else rc)


def exit_reason(job: Job) -> str:
    if job["state"] != FINISHED or job["kill_reason"] is None:
        return ""
    reason = str(job["kill_reason"])
    keyword = KILL_KEYWORDS.get(reason, reason)
    return f"{keyword}: {TERM_REASONS.get(keyword, 'job killed')}"


def _when(t: float | None, finish: bool = False) -> str:
    if not t:
        return ""
    lt = time.localtime(t)
    text = f"{time.strftime('%b', lt)} {lt.tm_mday:2d} {time.strftime('%H:%M', lt)}"
    return text + " L" if finish else text


def _mem(n: int | None) -> str:
    if not n:
        return ""
    unit = unit_for_limits() or "KB"
    value = n / 1024 ** UNITS[unit]
    words = {1: "Kbytes", 2: "Mbytes", 3: "Gbytes", 4: "Tbytes", 5: "Pbytes", 6: "Ebytes",
             7: "Zbytes"}
    return f"{value:.1f} {words[UNITS[unit]]}"


def pend_reason(job: Job) -> str:
    if job["state"] == HELD:
        return "The job was suspended by the user while pending"
    if job["state"] != PENDING:
        return ""
    if job["extra"].get("never_fits"):
        return "Job's requirements for resource reservation not satisfied"
    return "New job is waiting for scheduling"


def field(job: Job, key: str) -> str:
    extra = job["extra"]
    values: dict[str, Any] = {
        "JOBID": str(extra["job_id"]),
        "JOBINDEX": str(extra["index"]),
        "STAT": stat(job),
        "EXIT_CODE": exit_code(job),
        "EXIT_REASON": exit_reason(job),
        "JOB_NAME": job["name"],
        "USER": job["user"],
        "QUEUE": extra["queue"],
        "PROJ_NAME": extra["project"],
        "FROM_HOST": extra["from_host"],
        "EXEC_HOST": ":".join([job["host"]] * int(job["cores"])) if job["host"] else "",
        "SUBMIT_TIME": _when(job["submit_time"]),
        "START_TIME": _when(job["start_time"]),
        "FINISH_TIME": _when(job["end_time"], finish=True) if job["state"] == FINISHED else "",
        "PEND_REASON": pend_reason(job),
        "MAX_MEM": _mem(job["max_rss"]),
        "MEMLIMIT": _mem(job["mem_limit"]),
        "RUNTIMELIMIT": (
            f"{job['run_limit'] / env_float('FAKE_LSF_SECONDS_PER_MINUTE', 60.0):.1f}"
            if job["run_limit"] else ""
        ),
        "NREQ_SLOT": str(job["cores"]),
        "NALLOC_SLOT": str(job["cores"]) if job["host"] else "",
        "RUN_TIME": (
            f"{int((job['end_time'] or time.time()) - job['start_time'])} second(s)"
            if job["start_time"] else ""
        ),
        "CPU_USED": "",
        "PIDS": str(job["pid"]) if job["pid"] else "",
        "EXEC_CWD": job["cwd"] if job["start_time"] else "",
        "OUTPUT_FILE": job["stdout"] or "",
        "ERROR_FILE": job["stderr"] or "",
        "COMMAND": " ".join(job["command"][2:]) if len(job["command"]) > 2 else "",
        "GPU_NUM": str(job.get("gpus", 0) or ""),
    }
    return str(values[key])


def _parse_format(spec: str) -> tuple[list[str], str]:
    delimiter = " "
    m = re.search(r"delimiter='(.)'", spec)
    if m:
        delimiter = m.group(1)
        spec = spec[: m.start()] + spec[m.end():]
    keys: list[str] = []
    for word in spec.split():
        name = word.split(":")[0].lower()
        if name == "all":
            keys.extend(dict.fromkeys(FIELDS.values()))
            continue
        if name not in FIELDS:
            raise CommandError(f"Output format error: Unknown field name <{name}>", BAD)
        keys.append(FIELDS[name])
    return keys, delimiter


def _select(state: State, ids: list[str], name: str | None, show_all: bool, only: str | None
            ) -> tuple[list[Job], list[str]]:
    jobs: list[Job] = list(state["jobs"].values())
    missing: list[str] = []
    if ids:
        chosen: list[Job] = []
        for raw in ids:
            found = [j for j in jobs if j["id"] == raw or str(j["extra"]["job_id"]) == raw]
            if not found:
                missing.append(raw)
            chosen.extend(j for j in found if j not in chosen)
        jobs = chosen
    elif not show_all:
        jobs = [j for j in jobs if j["state"] != FINISHED]
    if name is not None:
        pattern = re.compile("^" + re.escape(name).replace(r"\*", ".*") + "$")
        jobs = [j for j in jobs if pattern.match(j["name"]) or
                pattern.match(j["name"].rsplit("[", 1)[0])]
    if only == "d":
        jobs = [j for j in jobs if j["state"] == FINISHED]
    elif only == "r":
        jobs = [j for j in jobs if j["state"] == RUNNING]
    elif only == "p":
        jobs = [j for j in jobs if j["state"] in (PENDING, HELD)]
    jobs.sort(key=lambda j: (j["extra"]["job_id"], j["extra"]["index"]))
    return jobs, missing


def bjobs(argv: list[str]) -> int:
    opts, ids = split_option_args(
        argv, {"-o", "-J", "-u", "-q", "-P", "-m"},
        {"-json", "-noheader", "-a", "-d", "-p", "-r", "-s", "-w", "-l", "-hms", "-A", "-x"},
        "Usage: bjobs [-h] [-V] [-A] [-a] [-aps| -l | -w] [-d] [-p] [-r] [-s] [-json]"
        " [-noheader] [-o \"field_name ...\"] [-J job_name] [-u user_name | -u all] [job_id ...]",
        BAD,
    )
    if "-json" in opts and "-noheader" in opts:
        raise CommandError("The -json and -noheader options cannot be used together.", BAD)
    fmt = _last(opts, "-o") or os.environ.get("LSB_BJOBS_FORMAT")
    if "-json" in opts and fmt is None:
        raise CommandError("The -json option must be used together with the -o option.", BAD)
    only = next((k[1] for k in ("-d", "-r", "-p") if k in opts), None)
    st = store()
    with st.locked() as state:
        purge(state, clean_period())
        jobs, missing = _select(state, ids, _last(opts, "-J"), "-a" in opts or only == "d", only)
    status = BAD if missing and not jobs else 0
    if "-json" in opts:
        assert fmt is not None
        keys, _ = _parse_format(fmt)
        records: list[dict[str, str]] = [{k: field(j, k) for k in keys} for j in jobs]
        records += [{"JOBID": m, "ERROR": f"Job <{m}> is not found"} for m in missing]
        doc = {"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}
        print(json.dumps(doc, indent=2, separators=(",", ":")))
        return status
    for m in missing:
        sys.stderr.write(f"Job <{m}> is not found\n")
    if not jobs:
        if not missing:
            sys.stderr.write("No unfinished job found\n" if not ids else "")
        return status
    if fmt is not None:
        keys, delim = _parse_format(fmt)
        if "-noheader" not in opts:
            print(delim.join(keys))
        for j in jobs:
            print(delim.join(field(j, k) or "-" for k in keys))
        return status
    if "-noheader" not in opts:
        print("JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME")
    for j in jobs:
        print(f"{field(j, 'JOBID'):<8}{j['user']:<8}{stat(j):<6}{j['extra']['queue']:<11}"
              f"{j['extra']['from_host']:<12}{(j['host'] or ''):<12}{j['name'][:10]:<11}"
              f"{field(j, 'SUBMIT_TIME')}")
    return status


# ----------------------------------------------------------------------------------- bkill


def bkill(argv: list[str]) -> int:
    opts, ids = split_option_args(argv, {"-J", "-s", "-u", "-q"}, {"-r", "-l"},
                                  "Usage: bkill [-h] [-V] [-l] [-r | -s signal] [-J job_name]"
                                  " [job_id | \"job_id[index_list]\"] ...", BAD)
    name = _last(opts, "-J")
    if not ids and name is None:
        raise CommandError("Job ID or one of '-m', '-u' '-q' and '-J' must be specified", BAD)
    reason = "force" if "-r" in opts else "owner"
    st = store()
    status = 0
    to_wake: list[Job] = []
    with st.locked() as state:
        jobs = list(state["jobs"].values())
        targets: list[tuple[str, list[Job]]] = []
        if ids == ["0"] or (not ids and name is not None):
            chosen, _ = _select(state, [], name, True, None)
            targets = [(str(j["extra"]["job_id"]), [j]) for j in chosen if j["state"] != FINISHED]
            if not targets:
                raise CommandError("No unfinished job found", BAD)
        else:
            for raw in ids:
                if not re.fullmatch(r"\d+(\[\d+\])?", raw):
                    status = BAD
                    sys.stderr.write(f"{raw}: Illegal job ID.\n")
                    continue
                targets.append(
                    (raw, [j for j in jobs if j["id"] == raw or str(j["extra"]["job_id"]) == raw])
                )
        for raw, found in targets:
            if not found:
                status = BAD
                sys.stderr.write(f"Job <{raw}>: No matching job found\n")
                continue
            live = [j for j in found if j["state"] != FINISHED]
            if not live:
                status = BAD
                sys.stderr.write(f"Job <{raw}>: Job has already finished\n")
                continue
            for j in live:
                if j["state"] in (PENDING, HELD):
                    j.update(state=FINISHED, end_time=time.time(), kill_reason=reason)
                else:
                    j["kill_requested"] = reason
                to_wake.append(j)
            print(f"Job <{raw}> is being terminated")
    for j in to_wake:
        wake(j)
    return status


def _suspend_resume(argv: list[str], resume: bool) -> int:
    _, ids = split_option_args(argv, set(), set(), "Usage: bstop|bresume job_id ...", BAD)
    status = 0
    st = store()
    with st.locked() as state:
        for raw in ids:
            found = [j for j in state["jobs"].values()
                     if j["id"] == raw or str(j["extra"]["job_id"]) == raw]
            if not found:
                status = BAD
                sys.stderr.write(f"Job <{raw}>: No matching job found\n")
                continue
            if all(j["state"] == FINISHED for j in found):
                status = BAD
                sys.stderr.write(f"Job <{raw}>: Job has already finished\n")
                continue
            for j in found:
                if resume and j["state"] == HELD:
                    j["state"] = PENDING
                elif not resume and j["state"] == PENDING:
                    j["state"] = HELD
            print(f"Job <{raw}> is being {'resumed' if resume else 'stopped'}")
    return status


# ----------------------------------------------------------------------------------- hosts


def bhosts(argv: list[str]) -> int:
    opts, _ = split_option_args(argv, {"-o", "-R"}, {"-w", "-l", "-json", "-noheader", "-a"},
                                "Usage: bhosts [-h] [-V] [-w | -l] [-json] [-noheader]", BAD)
    n = node()
    with store().locked() as state:
        running = [j for j in state["jobs"].values() if j["state"] == RUNNING]
    njobs = sum(int(j["cores"]) for j in running)
    row = {"HOST_NAME": n.name, "STATUS": "closed" if njobs >= n.cores else "ok", "JL/U": "-",
           "MAX": str(n.cores), "NJOBS": str(njobs), "RUN": str(njobs), "SSUSP": "0",
           "USUSP": "0", "RSV": "0"}
    fmt = _last(opts, "-o")
    if fmt is not None:
        keys = [w.split(":")[0].upper() for w in fmt.split()]
        if bad := [k for k in keys if k not in row and k != "JL_U"]:
            raise CommandError(f"Output format error: Unknown field name <{bad[0].lower()}>", BAD)
        rec = {k: row["JL/U" if k == "JL_U" else k] for k in keys}
        if "-json" in opts:
            print(json.dumps({"COMMAND": "bhosts", "HOSTS": 1, "RECORDS": [rec]}, indent=2,
                             separators=(",", ":")))
        else:
            if "-noheader" not in opts:
                print(" ".join(keys))
            print(" ".join(rec.values()))
        return 0
    if "-noheader" not in opts:
        print("HOST_NAME          STATUS       JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV")
    print(f"{n.name:<19}{row['STATUS']:<13}{'-':<8}{n.cores:<5}{njobs:<9}{njobs:<5}"
          f"{'0':<7}{'0':<7}{'0':<6}")
    return 0


def _lshosts_mem(n: int) -> str:
    mib = n / 1024**2
    return f"{mib / 1024:.1f}G" if mib >= 1024 else f"{mib:.0f}M"


def lshosts(argv: list[str]) -> int:
    opts, _ = split_option_args(argv, {"-o", "-R"}, {"-w", "-l", "-json", "-a"},
                                "Usage: lshosts [-h] [-V] [-w | -l] [-o \"field ...\" -json]",
                                BAD)
    n = node()
    row = {"HOST_NAME": n.name, "type": "X86_64", "model": "Intel_EM64T", "cpuf": "60.0",
           "ncpus": str(n.cores), "maxmem": _lshosts_mem(n.memory), "maxswp": "0M",
           "server": "Yes", "ngpus": str(n.gpus), "RESOURCES": "(mg)"}
    fmt = _last(opts, "-o")
    if fmt is not None:
        wanted = [w.split(":")[0] for w in fmt.split()]
        lookup = {k.lower(): k for k in row}
        if bad := [w for w in wanted if w.lower() not in lookup]:
            raise CommandError(f"Output format error: Unknown field name <{bad[0]}>", BAD)
        rec = {lookup[w.lower()].upper(): row[lookup[w.lower()]] for w in wanted}
        if "-json" in opts:
            print(json.dumps({"COMMAND": "lshosts", "HOSTS": 1, "RECORDS": [rec]}, indent=2,
                             separators=(",", ":")))
        else:
            print(" ".join(rec))
            print(" ".join(rec.values()))
        return 0
    print("HOST_NAME                     type       model  cpuf ncpus maxmem maxswp server "
          "RESOURCES")
    print(f"{n.name:<30}{'X86_64':<11}{'Intel_EM64T':>11}{'60.0':>6}{n.cores:>6}"
          f"{row['maxmem']:>7}{'0M':>7}{'Yes':>7} (mg)")
    return 0


def lsid(argv: list[str]) -> int:
    cluster = os.environ.get("FAKE_LSF_CLUSTER", "cluster1")
    print(VERSION)
    print("Copyright International Business Machines Corp. 1992, 2016.")
    print("US Government Users Restricted Rights - Use, duplication or disclosure restricted by "
          "GSA ADP Schedule Contract with IBM Corp.")
    print()
    print(f"My cluster name is {cluster}")
    print(f"My master name is {node().name}")
    return 0


COMMANDS = {
    "bsub": bsub,
    "bjobs": bjobs,
    "bkill": bkill,
    "bstop": lambda argv: _suspend_resume(argv, resume=False),
    "bresume": lambda argv: _suspend_resume(argv, resume=True),
    "bhosts": bhosts,
    "lshosts": lshosts,
    "lsid": lsid,
}


def main(name: str, argv: list[str]) -> int:
    """Entry point of ``bin/<name>``."""
    return run(COMMANDS[name], argv)
