"""qsub, qstat, qdel, qhold, qrls and pbsnodes of the PBS fake, as OpenPBS/PBS Professional
or as Torque 6 ($FAKE_PBS_FLAVOR = pbspro | torque). See this package's docstring for the
documentation each format and message follows.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any
from xml.sax.saxutils import escape

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

PBS_VERSION = "2023.1.1"  # OpenPBS 23.06 reports this pbs_version
TORQUE_VERSION = "6.1.3"

# PBS error numbers (pbs_error.h); commands exit with the number modulo 256.
PBSE_UNKJOBID = 15001
PBSE_BADATVAL = 15014
PBSE_BADSTATE = 15016
PBSE_UNKQUE = 15018
PBSE_UNKRESC = 15025
PBSE_HISTJOBID = 15139

# Exit_status values PBS sets itself (PBS Professional Reference Guide, "Job Exit Codes";
# Torque 6 Administrator Guide, "Job exit status").
PBSPRO_KILL_STATUS = {"memlimit": -27, "runlimit": -29}
TORQUE_KILL_STATUS = {"memlimit": -10, "runlimit": -11}

SIZE_UNITS = {"": 1, "b": 1, "w": 8, "kb": 1024, "kw": 8 * 1024, "mb": 1024**2,
              "mw": 8 * 1024**2, "gb": 1024**3, "gw": 8 * 1024**3, "tb": 1024**4,
              "tw": 8 * 1024**4, "pb": 1024**5}


def flavor() -> str:
    value = os.environ.get("FAKE_PBS_FLAVOR", "pbspro").lower()
    if value not in ("pbspro", "torque"):
        raise CommandError(f"FAKE_PBS_FLAVOR={value!r}: expected pbspro or torque", 2)
    return value


def torque() -> bool:
    return flavor() == "torque"


def store() -> Store:
    return store_from_env("FAKE_PBS_DIR", "fake-pbs")


def node() -> Node:
    return Node("FAKE_PBS")


def server() -> str:
    return os.environ.get("FAKE_PBS_SERVER") or node().name


def queues() -> list[str]:
    default = "batch" if torque() else "workq"
    return [q for q in os.environ.get("FAKE_PBS_QUEUES", default).split(",") if q]


def history_enabled() -> bool:
    """PBS Pro's job_history_enable (the server's default is False; this fake's is True, as
    on sites that want finished jobs' exit status from qstat -x)."""
    return os.environ.get("FAKE_PBS_JOB_HISTORY_ENABLE", "1") not in ("0", "false", "False")


def keep_finished() -> float:
    """How long finished jobs stay: job_history_duration (PBS Pro, default two weeks) or
    keep_completed (Torque, 300 s as torque.setup sets it)."""
    if torque():
        return env_float("FAKE_PBS_KEEP_COMPLETED", 300.0)
    if not history_enabled():
        return -1.0
    return env_float("FAKE_PBS_JOB_HISTORY_DURATION", 14 * 86400.0)


def _opt(opts: dict[str, list[str]], key: str) -> str | None:
    values = opts.get(key)
    return values[-1] if values else None


def fail(command: str, message: str, pbse: int) -> CommandError:
    return CommandError(f"{command}: {message}", pbse % 256)


def parse_size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kmgtp]?[bw]?)", value.strip().lower())
    if not m:
        raise ValueError(value)
    return int(m.group(1)) * SIZE_UNITS[m.group(2)]


def parse_walltime(value: str) -> float:
    parts = value.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in parts):
        raise ValueError(value)
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + float(p)
    return seconds


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def kb(n: int) -> str:
    return f"{n // 1024}kb"


# ----------------------------------------------------------------------------------- ids


def seq_of(raw: str) -> str:
    """'12.server', '12', '12[3].server' -> '12' / '12[3]'."""
    return raw.split(".", 1)[0]


def full_id(seq: str) -> str:
    return f"{seq}.{server()}"


def _find(state: State, raw: str) -> list[Job]:
    seq = seq_of(raw)
    jobs = state["jobs"].values()
    if seq.endswith("[]"):
        return [j for j in jobs if j["extra"]["array_seq"] == seq[:-2]]
    return [j for j in jobs if j["id"] == seq or (j["extra"]["array_seq"] == seq)]


# ----------------------------------------------------------------------------------- qsub


def qsub(argv: list[str]) -> int:
    with_value = {"-N", "-q", "-A", "-l", "-J", "-t", "-o", "-e", "-j", "-v", "-W", "-d", "-w",
                  "-S", "-m", "-M", "-r", "-k", "-p", "-a", "-c", "-P", "-u", "-C"}
    opts, operands = split_option_args(
        argv, with_value, {"-h", "-V", "-z", "-f", "-x", "-I", "-X"},
        "usage: qsub [-a date_time] [-A account_string] [-e path] [-h] [-J range] [-j oe|eo|n]"
        " [-l resource_list] [-N name] [-o path] [-q destination] [-V] [script | -- command"
        " [arg1 ...]]",
        2,
    )
    t = torque()
    queue = (opts.get("-q") or [queues()[0]])[-1].split("@")[0]
    if queue not in queues():
        raise fail("qsub", "Unknown queue" + (" MSG=requested queue not found" if t else ""),
                   PBSE_UNKQUE)
    resources: dict[str, str] = {}
    for spec in opts.get("-l", []):
        for item in _split_resources(spec):
            key, _, value = item.partition("=")
            resources[key.strip()] = value.strip()
    cores, gpus, mem, walltime = _resources(resources, t)
    if operands:
        path = operands[0]
        try:
            with open(path) as f:
                script = f.read()
        except OSError as exc:
            raise CommandError(f"qsub: script file:: {exc.strerror}", 1) from None
        default_name = os.path.basename(path)
    else:
        script = sys.stdin.read()
        default_name = "STDIN"
    name = (opts.get("-N") or [default_name])[-1]
    array = (opts.get("-t") if t else opts.get("-J")) or []
    if (opts.get("-J") if t else opts.get("-t")):
        raise CommandError(f"qsub: illegal option -- {'J' if t else 't'}", 2)
    indexes = _range(array[-1], t) if array else []
    cwd = os.getcwd()
    if t:
        cwd = (opts.get("-d") or opts.get("-w") or [os.path.expanduser("~")])[-1]
    else:
        cwd = os.path.expanduser("~")  # PBS Pro starts jobs in the owner's home directory
    join = (opts.get("-j") or ["n"])[-1]
    st = store()
    node_ = node()
    with st.locked() as state:
        purge(state, keep_finished())
        seq = str(state["next_id"])
        state["next_id"] = int(seq) + 1
        spool = st.dir / "spool"
        spool.mkdir(exist_ok=True)
        script_path = spool / f"{seq}.SC"
        script_path.write_text(script)
        submit_dir = os.getcwd()
        keys = []
        base_env = dict(os.environ) if "-V" in opts else {
            k: v for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "USER", "LOGNAME", "SHELL", "TZ", "PYTHONPATH")}
        env_file = st.write_env(seq, base_env)
        slots: list[int | None] = list(indexes) if indexes else [None]
        for index in slots:
            key = seq if index is None else f"{seq}[{index}]"
            env: dict[str, str] = {}
            for item in opts.get("-v", []):
                for pair in item.split(","):
                    k, _, v = pair.partition("=")
                    env[k] = v if v else os.environ.get(k, "")
            env.update(PBS_JOBID=full_id(key), PBS_JOBNAME=name, PBS_O_WORKDIR=submit_dir,
                       PBS_O_QUEUE=queue, PBS_QUEUE=queue, PBS_O_HOME=os.path.expanduser("~"),
                       PBS_ENVIRONMENT="PBS_BATCH", ENVIRONMENT="BATCH",
                       PBS_O_HOST=node_.name, PBS_NODEFILE=str(spool / f"{seq}.nodes"))
            if index is not None:
                env["PBS_ARRAYID" if t else "PBS_ARRAY_INDEX"] = str(index)
                env["PBS_ARRAY_ID"] = full_id(f"{seq}[]")
            out = _path(opts, "-o", name, seq, index, "o", submit_dir, t)
            err = None if join == "oe" else _path(opts, "-e", name, seq, index, "e",
                                                    submit_dir, t)
            kill_status = TORQUE_KILL_STATUS if t else PBSPRO_KILL_STATUS
            job = new_job(
                key, name=name, command=["/bin/sh", str(script_path)], cwd=cwd, env=env,
                env_file=env_file,
                stdout=out, stderr=err, cores=cores, gpus=gpus, mem_request=mem or 0,
                mem_limit=mem, run_limit=walltime, held="-h" in opts,
                kill_signals=["SIGTERM", "SIGKILL"],
                kill_interval=env_float("FAKE_PBS_KILL_DELAY", 10.0),
                extra={
                    "seq": seq, "array_seq": seq if index is not None else None,
                    "index": index, "queue": queue, "account": _opt(opts, "-A"),
                    "resources": resources, "cores": cores, "mem": mem, "walltime": walltime,
                    "append_output": False, "kill_status": kill_status,
                    "hold_types": "u" if "-h" in opts else "n", "qtime": time.time(),
                    "array_request": array[-1] if array else None, "submit_dir": submit_dir,
                    "kill_messages": {
                        "runlimit": "=>> PBS: job killed: walltime {used} exceeded limit "
                                    "{limit}\n",
                        "memlimit": "=>> PBS: job killed: mem {rss_kb}kb exceeded limit "
                                    "{limit_kb}kb\n",
                    },
                },
            )
            if not node_.can_ever_fit(job):
                job["extra"]["comment"] = "Not Running: Insufficient amount of resource: " + (
                    "ncpus" if cores > node_.cores else "ngpus" if gpus > node_.gpus else "mem")
            state["jobs"][key] = job
            keys.append(key)
        (spool / f"{seq}.nodes").write_text("\n".join([node_.name] * cores) + "\n")
    delay = env_float("FAKE_PBS_START_DELAY", 0.0)
    for key in keys:
        launch(st, key, node_, start_delay=delay)
    print(full_id(f"{seq}[]" if indexes else seq))
    return 0


def _split_resources(spec: str) -> list[str]:
    # commas separate resources, except inside a select/nodes chunk (none there) or quotes
    return [part for part in spec.split(",") if part]


def _resources(res: dict[str, str], t: bool) -> tuple[int, int, int | None, float | None]:
    cores, gpus, mem, walltime = 1, 0, None, None
    known = {"walltime", "mem", "ncpus", "ngpus", "vmem", "pmem", "cput", "place", "select",
             "nodes", "file", "host", "arch", "software"}
    for key, value in res.items():
        if key not in known:
            raise fail("qsub", f"Unknown resource Resource_List.{key}", PBSE_UNKRESC)
        try:
            if key == "walltime":
                walltime = parse_walltime(value)
            elif key in ("mem", "vmem"):
                mem = parse_size(value)
            elif key == "ncpus":
                cores = int(value)
            elif key == "ngpus":
                gpus = int(value)
            elif key == "select" and not t:
                chunks = value.split(":")
                if chunks[0].isdigit():
                    chunks = chunks[1:]
                for chunk in chunks:
                    k, _, v = chunk.partition("=")
                    if k == "ncpus":
                        cores = int(v)
                    elif k == "mem":
                        mem = parse_size(v)
                    elif k == "ngpus":
                        gpus = int(v)
            elif key == "nodes" and t:
                for chunk in value.split(":")[1:]:
                    k, _, v = chunk.partition("=")
                    if k == "ppn":
                        cores = int(v)
                    elif k == "gpus":
                        gpus = int(v)
            elif key in ("select", "nodes"):
                raise fail("qsub", f"Unknown resource Resource_List.{key}", PBSE_UNKRESC)
        except ValueError:
            raise fail("qsub", f"Illegal attribute or resource value Resource_List.{key}",
                       PBSE_BADATVAL) from None
    return cores, gpus, mem, walltime


def _range(spec: str, t: bool) -> list[int]:
    body = spec.split("%", maxsplit=1)[0]
    out: list[int] = []
    for part in body.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not m:
            raise fail("qsub", "Illegal attribute or resource value array_indices_submitted",
                       PBSE_BADATVAL)
        start, end = int(m.group(1)), int(m.group(2) or m.group(1))
        out.extend(range(start, end + 1, int(m.group(3) or 1)))
    if not t and (len(out) < 2 or not body.count("-")):
        # PBS Pro: "-J X-Y[:Z]" with X < Y
        raise fail("qsub", "Illegal attribute or resource value array_indices_submitted",
                   PBSE_BADATVAL)
    return out


def _path(opts: dict[str, list[str]], option: str, name: str, seq: str, index: int | None,
          letter: str, submit_dir: str, t: bool) -> str:
    given = opts.get(option)
    if given:
        value = given[-1].rsplit(":", 1)[-1] if ":" in given[-1] else given[-1]
        path = value if os.path.isabs(value) else os.path.join(submit_dir, value)
        if not os.path.isdir(path):
            if index is not None:
                path += f"-{index}" if t else f".{index}"
            return path
        base = path
    else:
        base = submit_dir
    suffix = "" if index is None else (f"-{index}" if t else f".{index}")
    return os.path.join(base, f"{name}.{letter}{seq}{suffix}")


# ----------------------------------------------------------------------------------- states


def job_state(job: Job) -> str:
    if job["state"] == PENDING:
        return "Q"
    if job["state"] == HELD:
        return "H"
    if job["state"] == RUNNING:
        return "E" if job.get("kill_requested") else "R"
    if torque():
        return "C"
    return "X" if job["extra"]["array_seq"] is not None else "F"


def exit_status(job: Job) -> int | None:
    if job["state"] != FINISHED:
        return None
    reason = job["kill_reason"]
    if reason and reason.startswith("exit:"):  # an admin's end (the control hook)
        return int(reason[5:])
    special = job["extra"]["kill_status"].get(reason)
    if special is not None:
        return int(special)
    if job["extra"].get("exec_status") is not None:
        return int(job["extra"]["exec_status"])
    if job["returncode"] is None:
        return None  # deleted before it ran
    rc = int(job["returncode"])
    return 256 - rc if rc < 0 else rc


def _ctime(t: float | None) -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(t or 0))


def attributes(job: Job) -> dict[str, Any]:
    """The job's attributes as qstat -f names them (values as PBS Pro's JSON shows them)."""
    extra = job["extra"]
    t = torque()
    res: dict[str, Any] = {}
    if t:
        if extra["mem"] is not None:
            res["mem"] = kb(extra["mem"])
        res["nodect"] = 1
        res["nodes"] = extra["resources"].get("nodes", "1")
        if extra["walltime"] is not None:
            res["walltime"] = hms(extra["walltime"])
    else:
        res["ncpus"] = extra["cores"]
        if extra["mem"] is not None:
            res["mem"] = kb(extra["mem"])
        res["nodect"] = 1
        res["place"] = "pack"
        res["select"] = extra["resources"].get(
            "select", f"1:ncpus={extra['cores']}" + (f":mem={kb(extra['mem'])}"
                                                     if extra["mem"] is not None else ""))
        if extra["walltime"] is not None:
            res["walltime"] = hms(extra["walltime"])
    attrs: dict[str, Any] = {
        "Job_Name": job["name"],
        "Job_Owner": f"{job['user']}@{node().name}",
    }
    if job["start_time"]:
        used_end = job["end_time"] or time.time()
        attrs["resources_used"] = {
            "cpupercent": 0, "cput": "00:00:00", "mem": kb(int(job["max_rss"] or 0)),
            "ncpus": extra["cores"], "vmem": kb(int(job["max_rss"] or 0)),
            "walltime": hms(used_end - job["start_time"]),
        }
    attrs["job_state"] = job_state(job)
    attrs["queue"] = extra["queue"]
    attrs["server"] = server()
    attrs["Checkpoint"] = "u"
    attrs["ctime"] = _ctime(job["submit_time"])
    attrs["Error_Path"] = f"{node().name}:{job['stderr'] or job['stdout']}"
    if job["host"]:
        attrs["exec_host"] = f"{job['host']}/0" + (f"*{extra['cores']}"
                                                   if extra["cores"] > 1 and not t else "")
        if not t:
            attrs["exec_vnode"] = f"({job['host']}:ncpus={extra['cores']})"
    attrs["Hold_Types"] = extra["hold_types"] if job["state"] == HELD else "n"
    attrs["Join_Path"] = "oe" if job["stderr"] is None else "n"
    attrs["Keep_Files"] = "n"
    attrs["Mail_Points"] = "a"
    attrs["mtime"] = _ctime(job["end_time"] or job["start_time"] or job["submit_time"])
    attrs["Output_Path"] = f"{node().name}:{job['stdout']}"
    attrs["Priority"] = 0
    attrs["qtime"] = _ctime(extra["qtime"])
    attrs["Rerunable"] = "True"
    attrs["Resource_List"] = res
    if job["start_time"]:
        attrs["stime"] = _ctime(job["start_time"])
        attrs["session_id"] = job["pid"] or 0
    if extra.get("account"):
        attrs["Account_Name"] = extra["account"]
    attrs["substate"] = {"Q": 10, "H": 20, "R": 42, "E": 51, "F": 92, "X": 92, "C": 59}[
        attrs["job_state"]]
    comment = extra.get("comment")
    if job["state"] == FINISHED:
        status = exit_status(job)
        if status is not None:
            attrs["Exit_status"] = status
        comment = (
            f"Job run at {_ctime(job['start_time'])} on ({job['host']}:ncpus={extra['cores']})"
            f" and finished" if job["start_time"] else "Job deleted"
        )
        attrs["obittime"] = _ctime(job["end_time"])
    elif job["state"] == RUNNING:
        comment = f"Job run at {_ctime(job['start_time'])} on ({job['host']}:ncpus=" \
                  f"{extra['cores']})"
    if comment:
        attrs["comment"] = comment
    attrs["etime"] = _ctime(extra["qtime"])
    if extra["array_seq"] is not None:
        attrs["array_id"] = full_id(f"{extra['array_seq']}[]")
        attrs["array_index"] = extra["index"]
    attrs["run_count"] = job["starts"]
    attrs["Variable_List"] = ",".join(
        f"{k}={v}" for k, v in job["env"].items() if k.startswith("PBS_"))
    attrs["project"] = "_pbs_project_default"
    if job["start_time"]:
        attrs["run_version"] = 1
    attrs["_epoch"] = {"ctime": job["submit_time"], "qtime": extra["qtime"],
                       "etime": extra["qtime"], "start_time": job["start_time"],
                       "comp_time": job["end_time"],
                       "mtime": job["end_time"] or job["start_time"] or job["submit_time"]}
    return attrs


def array_parent(seq: str, subjobs: list[Job]) -> dict[str, Any]:
    """The array job itself (qstat shows it as 'seq[].server')."""
    first = subjobs[0]
    attrs = attributes(first)
    for key in ("Exit_status", "exec_host", "exec_vnode", "resources_used", "array_id",
                "array_index", "session_id", "stime", "obittime"):
        attrs.pop(key, None)
    states = {j["state"] for j in subjobs}
    if states == {FINISHED}:
        attrs["job_state"] = "C" if torque() else "F"
        codes = [exit_status(j) for j in subjobs]
        if not torque():
            attrs["Exit_status"] = 0 if all(c == 0 for c in codes) else 1
    elif states <= {PENDING, HELD}:
        attrs["job_state"] = "H" if states == {HELD} else "Q"
    else:
        attrs["job_state"] = "R" if torque() else "B"
    attrs["array"] = "True"
    attrs["array_indices_submitted"] = first["extra"]["array_request"]
    attrs["array_indices_remaining"] = ",".join(
        str(j["extra"]["index"]) for j in subjobs if j["state"] in (PENDING, HELD)) or "-"
    return attrs


# ----------------------------------------------------------------------------------- qstat


def qstat(argv: list[str]) -> int:
    t = torque()
    with_value = {"-F", "-u", "-D"}
    flags = {"-f", "-x", "-t", "-H", "-a", "-n", "-1", "-s", "-w", "-J", "-p", "-r", "-i", "-E"}
    opts, ids = split_option_args(argv, with_value, flags,
                                  "usage: qstat [-f [-F json|dsv]] [-x] [-t] [-J] [job_id ...]",
                                  2)
    fmt = _opt(opts, "-F")
    if fmt is not None and (t or fmt not in ("json", "dsv")):
        raise CommandError("qstat: invalid option -- 'F'" if t else
                           f"qstat: Invalid value for -F option: {fmt}", 2)
    xml = t and "-x" in opts
    history = (not t) and ("-x" in opts or "-H" in opts)
    expand = "-t" in opts or "-J" in opts
    st = store()
    with st.locked() as state:
        purge(state, keep_finished())
        jobs = list(state["jobs"].values())
    status = 0
    errors: list[str] = []
    rows: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()

    def add(job_id: str, attrs: dict[str, Any]) -> None:
        if job_id not in seen:
            seen.add(job_id)
            rows.append((job_id, attrs))

    def emit(selected: list[Job], raw: str | None) -> None:
        nonlocal status
        by_array: dict[str, list[Job]] = {}
        for j in selected:
            if j["extra"]["array_seq"] is not None:
                by_array.setdefault(j["extra"]["array_seq"], []).append(j)
        for j in selected:
            seq = j["extra"]["array_seq"]
            if seq is not None and not (raw and seq_of(raw) == j["id"]):
                add(full_id(f"{seq}[]"), array_parent(seq, by_array[seq]))
                if not expand:
                    continue
            if j["state"] == FINISHED and not t and not history and raw is None:
                continue
            add(full_id(j["id"]), attributes(j))

    if ids:
        for raw in ids:
            found = _find({"jobs": {j["id"]: j for j in jobs}}, raw)
            shown = found
            if not found:
                errors.append(
                    f"qstat: Unknown Job Id {'Error ' if t else ''}{full_id(seq_of(raw))}")
                status = PBSE_UNKJOBID % 256
                continue
            if not t and not history and all(j["state"] == FINISHED for j in found):
                errors.append(f"qstat: {full_id(seq_of(raw))} Job has finished, use -x or -H to "
                              "obtain historical job information")
                status = PBSE_HISTJOBID % 256
                continue
            emit(sorted(shown, key=_order), raw)
    else:
        emit(sorted(jobs, key=_order), None)
    if fmt == "json":
        doc: dict[str, Any] = {"timestamp": int(time.time()), "pbs_version": PBS_VERSION,
                               "pbs_server": server()}
        if rows:
            doc["Jobs"] = {i: _public(a) for i, a in rows}
        print(json.dumps(doc, indent=4))
    elif xml:
        if rows:
            print("<Data>" + "".join(_torque_xml(i, a) for i, a in rows) + "</Data>")
    elif "-f" in opts:
        for job_id, attrs in rows:
            print(f"Job Id: {job_id}")
            for key, value in _public(attrs).items():
                if isinstance(value, dict):
                    for k, v in value.items():
                        print(f"    {key}.{k} = {v}")
                else:
                    print(f"    {key} = {value}")
            print()
    elif rows:
        print("Job id            Name             User              Time Use S Queue")
        print("----------------  ---------------- ----------------  -------- - -----")
        for job_id, attrs in rows:
            used = attrs.get("resources_used", {}).get("cput", "0")
            print(f"{job_id[:16]:<18}{attrs['Job_Name'][:16]:<17}"
                  f"{attrs['Job_Owner'].split('@')[0][:16]:<18}{used:>8} {attrs['job_state']}"
                  f" {attrs['queue']}")
    for e in errors:
        sys.stderr.write(e + "\n")
    return status


def _public(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if not k.startswith("_")}


def _order(job: Job) -> tuple[int, int]:
    return int(job["extra"]["seq"]), int(job["extra"]["index"] or 0)


def _torque_xml(job_id: str, attrs: dict[str, Any]) -> str:
    names = {"Exit_status": "exit_status", "stime": "start_time", "obittime": "comp_time",
             "run_count": "start_count"}
    parts = [f"<Job_Id>{escape(job_id)}</Job_Id>"]
    epoch = attrs.get("_epoch", {})
    for attr, raw_value in _public(attrs).items():
        key = names.get(attr, attr)
        value = raw_value
        if key in ("exec_vnode", "project", "run_version", "substate", "array", "array_id",
                   "array_index", "array_indices_submitted", "array_indices_remaining"):
            continue
        if key in epoch:
            value = int(epoch[key] or 0)
        if isinstance(value, dict):
            inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in value.items())
            parts.append(f"<{key}>{inner}</{key}>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    if "array_index" in attrs:
        parts.append(f"<job_array_id>{attrs['array_index']}</job_array_id>")
    if "array_indices_submitted" in attrs:
        parts.append(f"<job_array_request>{attrs['array_indices_submitted']}"
                     "</job_array_request>")
    return "<Job>" + "".join(parts) + "</Job>"


# ----------------------------------------------------------------------------------- qdel


def qdel(argv: list[str]) -> int:
    _, ids = split_option_args(argv, {"-W"}, {"-x", "-p"},
                                  "usage: qdel [-W force|suppress_email=X] [-x] job_identifier...",
                                  2)
    if not ids:
        raise CommandError("usage: qdel [-W force|suppress_email=X] [-x] job_identifier...", 2)
    t = torque()
    status = 0
    hit: list[Job] = []
    with store().locked() as state:
        purge(state, keep_finished())
        for raw in ids:
            found = _find(state, raw)
            if not found:
                sys.stderr.write(f"qdel: Unknown Job Id {'Error ' if t else ''}"
                                 f"{full_id(seq_of(raw))}\n")
                status = PBSE_UNKJOBID % 256
                continue
            live = [j for j in found if j["state"] != FINISHED]
            if not live:
                if t:
                    sys.stderr.write(f"qdel: Request invalid for state of job "
                                     f"{full_id(seq_of(raw))}\n")
                    status = PBSE_BADSTATE % 256
                else:
                    sys.stderr.write(f"qdel: Job has finished {full_id(seq_of(raw))}\n")
                    status = PBSE_HISTJOBID % 256
                continue
            for j in live:
                if j["state"] in (PENDING, HELD):
                    j.update(state=FINISHED, end_time=time.time(), kill_reason="owner")
                else:
                    j["kill_requested"] = "owner"
                hit.append(j)
    for j in hit:
        wake(j)
    return status


def _hold(argv: list[str], release: bool) -> int:
    command = "qrls" if release else "qhold"
    opts, ids = split_option_args(argv, {"-h"}, set(), f"usage: {command} [-h hold_list] "
                                  "job_identifier ...", 2)
    status = 0
    t = torque()
    with store().locked() as state:
        for raw in ids:
            found = _find(state, raw)
            if not found:
                sys.stderr.write(f"{command}: Unknown Job Id {'Error ' if t else ''}"
                                 f"{full_id(seq_of(raw))}\n")
                status = PBSE_UNKJOBID % 256
                continue
            for j in found:
                if release and j["state"] == HELD:
                    j["state"] = PENDING
                    j["extra"]["hold_types"] = "n"
                elif not release and j["state"] == PENDING:
                    j["state"] = HELD
                    j["extra"]["hold_types"] = (opts.get("-h") or ["u"])[-1]
                elif not release and j["state"] != HELD:
                    sys.stderr.write(f"{command}: Request invalid for state of job "
                                     f"{full_id(seq_of(raw))}\n")
                    status = PBSE_BADSTATE % 256
    return status


# ----------------------------------------------------------------------------------- nodes


def pbsnodes(argv: list[str]) -> int:
    t = torque()
    argv = _expand_flags(argv)
    opts, _ = split_option_args(argv, {"-F"}, {"-a", "-v", "-x", "-l", "-S", "-j"},
                                "usage: pbsnodes [-a] [-v] [-F json] [-x]", 2)
    n = node()
    with store().locked() as state:
        running = [j for j in state["jobs"].values() if j["state"] == RUNNING]
    used = sum(int(j["cores"]) for j in running)
    state_word = "job-busy" if used >= n.cores else "free"
    if t:
        if "-x" not in opts:
            print(n.name)
            print(f"     state = {'job-exclusive' if used >= n.cores else 'free'}")
            print(f"     np = {n.cores}")
            print("     ntype = cluster")
            print()
            return 0
        status = (f"rectime={int(time.time())},state=free,ncpus={n.cores},"
                  f"physmem={n.memory // 1024}kb,totmem={n.memory // 1024}kb,"
                  f"availmem={n.memory // 1024}kb")
        print(f"<Data><Node><name>{n.name}</name><state>"
              f"{'job-exclusive' if used >= n.cores else 'free'}</state><power_state>Running"
              f"</power_state><np>{n.cores}</np><ntype>cluster</ntype><status>{status}</status>"
              f"<mom_service_port>15002</mom_service_port><mom_manager_port>15003"
              f"</mom_manager_port><total_sockets>1</total_sockets><total_numa_nodes>1"
              f"</total_numa_nodes><total_cores>{n.cores}</total_cores><total_threads>{n.cores}"
              f"</total_threads><dedicated_sockets>0</dedicated_sockets><dedicated_numa_nodes>0"
              f"</dedicated_numa_nodes><dedicated_cores>0</dedicated_cores><dedicated_threads>"
              f"{used}</dedicated_threads></Node></Data>")
        return 0
    info: dict[str, Any] = {
        "Mom": n.name, "Port": 15002, "pbs_version": PBS_VERSION, "ntype": "PBS",
        "state": state_word, "pcpus": n.cores,
        "jobs": [full_id(j["id"]) for j in running],
        "resources_available": {"arch": "linux", "host": n.name, "mem": kb(n.memory),
                                "ncpus": n.cores, "ngpus": n.gpus, "vnode": n.name},
        "resources_assigned": {"ncpus": used,
                               "mem": kb(sum(int(j.get("mem_request") or 0) for j in running))},
        "resv_enable": "True", "sharing": "default_shared",
        "last_state_change_time": int(time.time()),
    }
    if _opt(opts, "-F") == "json":
        print(json.dumps({"timestamp": int(time.time()), "pbs_version": PBS_VERSION,
                          "pbs_server": server(), "nodes": {n.name: info}}, indent=4))
        return 0
    print(n.name)
    for key, value in info.items():
        if isinstance(value, dict):
            for k, v in value.items():
                print(f"     {key}.{k} = {v}")
        elif isinstance(value, list):
            if value:
                print(f"     {key} = {', '.join(value)}")
        else:
            print(f"     {key} = {value}")
    print()
    return 0


def _expand_flags(argv: list[str]) -> list[str]:
    """'-av' -> '-a', '-v' (getopt's grouped flags); option values are left alone."""
    out: list[str] = []
    take_value = False
    for a in argv:
        if take_value or not a.startswith("-") or a == "-F" or len(a) <= 2:
            out.append(a)
            take_value = a == "-F"
            continue
        out.extend(f"-{c}" for c in a[1:])
    return out


COMMANDS = {
    "qsub": qsub,
    "qstat": qstat,
    "qdel": qdel,
    "qhold": lambda argv: _hold(argv, release=False),
    "qrls": lambda argv: _hold(argv, release=True),
    "pbsnodes": pbsnodes,
}


def main(name: str, argv: list[str]) -> int:
    """Entry point of ``bin/<name>``."""
    return run(COMMANDS[name], argv)
