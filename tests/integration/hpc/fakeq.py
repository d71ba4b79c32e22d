"""A tiny batch queue for testing the batch-queue base: ``python fakeq.py STATE VERB ...``.

Not any real system's syntax (the real ones have their own doubles and services); just
enough of a queue to drive the base through submission, arrays, status, accounting,
cancels, node lists and failures. State is one directory of small files:

- ``next``: the next job number; ``calls.log``: one line per command run (verb, args);
- ``<id>.job``: the script and array index of a submitted job (``status --all`` lists
  every job, like a query that names no ids); ``<id>.pgid``: its
  process group once started; ``<id>.rc``: its exit status once ended;
  ``<id>.cancelled``, ``<id>.vanished``, ``<id>.oom``: what happened to it;
- ``hold``: while it exists, new jobs stay PENDING (``release`` starts them);
- ``faults``: lines ``VERB KIND [SECONDS]``, each used once by the next such command:
  ``transient`` (exit 2, "controller busy"), ``permanent`` (exit 3, "invalid
  partition"), ``slow`` (sleep, then work).
Jobs run detached, each in its own process group, with ``FAKEQ_JOB_ID``,
``FAKEQ_STATE`` and, for arrays, ``FAKEQ_TASK_ID`` set.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time


def _path(state: str, name: str) -> str:
    return os.path.join(state, name)


def _exists(state: str, name: str) -> bool:
    return os.path.exists(_path(state, name))


def _read(state: str, name: str) -> str:
    with open(_path(state, name)) as f:
        return f.read().strip()


def _write(state: str, name: str, text: str) -> None:
    tmp = _path(state, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, _path(state, name))


def _fault(state: str, verb: str) -> None:
    """Use up the first fault for ``verb``, if any."""
    path = _path(state, "faults")
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        lines = f.read().splitlines()
        mine = next((i for i, line in enumerate(lines) if line.split()[0] == verb), None)
        if mine is None:
            return
        kind, *rest = lines.pop(mine).split()[1:]
        f.seek(0)
        f.truncate()
        f.write("".join(line + "\n" for line in lines))
    if kind == "transient":
        print("fakeq: error: controller busy, try again", file=sys.stderr)
        sys.exit(2)
    if kind == "permanent":
        print("fakeq: error: invalid partition specified", file=sys.stderr)
        sys.exit(3)
    if kind == "slow":
        time.sleep(float(rest[0]) if rest else 1.0)


def _start(state: str, job_id: str) -> None:
    with open(_path(state, job_id + ".job")) as f:
        script, index = f.read().split("\t")
    env = dict(os.environ, FAKEQ_JOB_ID=job_id, FAKEQ_STATE=state)
    if index:
        env["FAKEQ_TASK_ID"] = index
    rc = _path(state, job_id + ".rc")
    # the job's process group: a shell that runs the script and records its status
    proc = subprocess.Popen(
        ["/bin/sh", "-c", '"$0"; echo $? > "$1.tmp"; mv "$1.tmp" "$1"', script, rc],
        env=env, start_new_session=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _write(state, job_id + ".pgid", str(proc.pid))


def submit(state: str, args: list[str]) -> None:
    size, script = 0, args[-1]
    if "--array" in args:
        size = int(args[args.index("--array") + 1])
    with open(_path(state, "next"), "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        number = int(f.read().strip() or "100")
        f.seek(0)
        f.truncate()
        f.write(str(number + 1))
    ids = [f"{number}_{i}" for i in range(1, size + 1)] if size else [str(number)]
    for i, job_id in enumerate(ids, start=1):
        _write(state, job_id + ".job", f"{script}\t{i if size else ''}")
        if not _exists(state, "hold"):
            _start(state, job_id)
    print("\n".join(ids))


def _queue_state(state: str, job_id: str) -> str | None:
    """The job's line in the queue, or None once it left (or never was)."""
    if not _exists(state, job_id + ".job"):
        return None
    if any(_exists(state, job_id + s) for s in (".rc", ".cancelled", ".vanished")):
        return None
    if _exists(state, job_id + ".pgid"):
        return f"{job_id} RUNNING - node1"
    return f"{job_id} PENDING {'Held' if _exists(state, 'hold') else 'Priority'} -"


def status(state: str, ids: list[str]) -> None:
    if ids == ["--all"]:  # every job of the queue, as qstat -u USER lists them
        ids = [n[:-len(".job")] for n in sorted(os.listdir(state)) if n.endswith(".job")]
        print("\n".join(line for job_id in ids if (line := _queue_state(state, job_id))))
        return
    lines = [line for job_id in ids if (line := _queue_state(state, job_id))]
    if ids and not lines:
        print("fakeq: error: Invalid job id specified", file=sys.stderr)
        sys.exit(1)
    print("\n".join(lines))


def acct(state: str, ids: list[str]) -> None:
    for job_id in ids:
        if not _exists(state, job_id + ".job") or _exists(state, job_id + ".vanished"):
            continue
        if _exists(state, job_id + ".cancelled"):
            print(f"{job_id} CANCELLED -")
        elif _exists(state, job_id + ".rc"):
            rc = _read(state, job_id + ".rc")
            word = ("OUT_OF_MEMORY" if _exists(state, job_id + ".oom")
                    else "COMPLETED" if rc == "0" else "FAILED")
            print(f"{job_id} {word} {rc}")
        elif _exists(state, job_id + ".pgid"):
            print(f"{job_id} RUNNING -")


def cancel(state: str, ids: list[str]) -> None:
    unknown = []
    for job_id in ids:
        if _queue_state(state, job_id) is None:
            unknown.append(job_id)
            continue
        _write(state, job_id + ".cancelled", "")
        if _exists(state, job_id + ".pgid"):
            _signal(int(_read(state, job_id + ".pgid")), signal.SIGKILL)
    if unknown:
        print(f"fakeq: error: Invalid job id specified: {' '.join(unknown)}", file=sys.stderr)
        sys.exit(1)


def vanish(state: str, ids: list[str]) -> None:
    """Test control: the job disappears without a trace (and without an exit record)."""
    for job_id in ids:
        _write(state, job_id + ".vanished", "")
        if _exists(state, job_id + ".pgid"):
            _signal(int(_read(state, job_id + ".pgid")), signal.SIGKILL)


def release(state: str, ids: list[str]) -> None:
    """Test control: lift the hold and start what waits."""
    if _exists(state, "hold"):
        os.unlink(_path(state, "hold"))
    for name in sorted(os.listdir(state)):
        job_id = name[:-len(".job")]
        if name.endswith(".job") and _queue_state(state, job_id) is not None \
                and not _exists(state, job_id + ".pgid"):
            _start(state, job_id)


def nodes(state: str, ids: list[str]) -> None:
    print("node1 4 8589934592 mixed\nnode2 4 8589934592 idle\nnode3 4 8589934592 down")


def _signal(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


VERBS = {"submit": submit, "status": status, "acct": acct, "cancel": cancel, "nodes": nodes,
         "vanish": vanish, "release": release}


def main() -> None:
    state, verb, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(_path(state, "calls.log"), "a") as f:
        f.write(" ".join([verb, *args]) + "\n")
    if verb not in ("vanish", "release"):
        _fault(state, verb)
    VERBS[verb](state, args)


if __name__ == "__main__":
    main()
