"""Runs one shipped Python call in the task's own process and writes its outcome.

The node (the local backend, or the executor on an agent) has already fetched the call's
blobs and checked their hashes; it tells this program where they are through the
environment. This file imports nothing of mesobatch, so it runs the same as a plain
script (``python function_task.py run-function``) or from the executor bundle, and as
a fork server (``--forkserver``, see forkserver.py): loaded once, it forks one copy of
itself per task, so a call does not wait for Python and cloudpickle to load.

cloudpickle is imported only when the call or its result needs it (by-value functions,
lambdas, closures); plain pickle covers the rest.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import select
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

#: the command of every function job; the node sets both variables
COMMAND = 'exec "$MESOBATCH_PYTHON" "$MESOBATCH_FUNCTION_RUNNER" run-function'

PYTHON_ENV = "MESOBATCH_PYTHON"
RUNNER_ENV = "MESOBATCH_FUNCTION_RUNNER"
FUNCTION_FILE_ENV = "MESOBATCH_FUNCTION_FILE"
OBJECT_DIR_ENV = "MESOBATCH_OBJECT_DIR"
RESULT_FILE_ENV = "MESOBATCH_RESULT_FILE"
#: extra sys.path entries (os.pathsep-separated), appended when missing
SYS_PATH_ENV = "MESOBATCH_SYS_PATH"

#: the first line of a call blob: format and the Python that pickled it
MAGIC = b"MBFN1"
#: persistent ids of objects shipped once with FunctionExecutor.put
OBJECT_TAG = "mesobatch-obj"

EXIT_OK = 0
EXIT_ERROR = 1


def blob_header() -> bytes:
    return MAGIC + f" {sys.version_info[0]}.{sys.version_info[1]}\n".encode()


# ------------------------------------------------------------------ outcomes
# A result file holds one pickled tuple:
#   ("ok", value)
#   ("error", pickled exception or None, "module.Type", message, traceback text)
#   ("refused", message)     -- the node refused a resource; the call never ran
# The exception is pickled on its own, so that the caller gets the type name, message
# and traceback even where the exception's class cannot be loaded.


def dumps(obj: Any) -> bytes:
    """Plain pickle when it can; cloudpickle for what only it can pickle."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        import cloudpickle  # noqa: PLC0415

        data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return data


def error_outcome(exc: BaseException) -> tuple[Any, ...]:
    kind = type(exc)
    name = f"{kind.__module__}.{kind.__qualname__}"
    text = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    try:
        pickled: bytes | None = dumps(exc)
    except Exception:  # the caller still gets its type, message and traceback
        pickled = None
    return ("error", pickled, name, str(exc), text)


def encode_outcome(outcome: tuple[Any, ...]) -> bytes:
    try:
        return dumps(outcome)
    except Exception as e:  # the value cannot travel: say so instead
        return dumps(error_outcome(TypeError(
            f"the call's result of type {type(outcome[1]).__name__} cannot be pickled: {e}")))


def write_outcome(path: str, outcome: tuple[Any, ...]) -> None:
    """Write atomically: the reader sees the whole result or none."""
    data = encode_outcome(outcome)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ------------------------------------------------------------------ loading the call


class _CallUnpickler(pickle.Unpickler):
    def __init__(self, data: io.BytesIO, object_dir: str | None,
                 other_python: bool = False) -> None:
        super().__init__(data)
        self.object_dir = object_dir
        self.other_python = other_python

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        if self.other_python and module.startswith("cloudpickle") and name == "_builtin_type":
            # cloudpickle rebuilds a by-value function's code with types.CodeType, whose
            # arguments and bytecode change with each minor version: built from another
            # Python's, the code loads and then crashes the interpreter when run
            # (SIGSEGV from 3.13's code on 3.11). Refuse it while loading instead.
            def builtin_type(type_name: str) -> Any:
                if type_name == "CodeType":
                    raise pickle.UnpicklingError("the call holds code pickled by value")
                return found(type_name)

            return builtin_type
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 2 and pid[0] == OBJECT_TAG):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return load_object(str(pid[1]), self.object_dir)


_objects: dict[str, Any] = {}


def load_object(digest: str, object_dir: str | None) -> Any:
    """An object shipped once per node (FunctionExecutor.put), loaded once per process."""
    if digest not in _objects:
        if not object_dir or len(digest) != 64 or not digest.isalnum():
            raise pickle.UnpicklingError(f"shipped object {digest[:12]} is not on this node")
        with open(os.path.join(object_dir, digest), "rb") as f:
            _objects[digest] = pickle.load(f)
    return _objects[digest]


def load_call(path: str, object_dir: str | None
              ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    with open(path, "rb") as f:
        header = f.readline()
        data = f.read()
    if not header.startswith(MAGIC):
        raise ValueError(f"{path} is not a mesobatch call")
    pickled_on = header[len(MAGIC):].strip().decode()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        fn, args, kwargs = _CallUnpickler(io.BytesIO(data), object_dir,
                                          other_python=pickled_on != here).load()
    except Exception as e:
        if pickled_on != here:
            raise RuntimeError(
                f"cannot load the call ({type(e).__name__}: {e}); it was pickled on Python "
                f"{pickled_on} and this node runs Python {here}: functions pickled by value "
                "need the same Python minor version") from e
        raise
    return fn, tuple(args), dict(kwargs)


def run(function_file: str, object_dir: str | None, result_file: str) -> int:
    """Load and run the call; write its outcome; the exit status says which."""
    try:
        fn, args, kwargs = load_call(function_file, object_dir)
        value = fn(*args, **kwargs)
    except BaseException as e:  # the caller gets it, whatever it is
        outcome = error_outcome(e)
        sys.stderr.write(outcome[4])
        write_outcome(result_file, outcome)
        return EXIT_ERROR
    write_outcome(result_file, ("ok", value))
    return EXIT_OK


# ------------------------------------------------------------------ process set-up


def _drop_own_dir() -> None:
    """Run as a script, Python puts this file's folder first on sys.path, where the
    executor's modules would shadow the user's (``runner``, ``stats``, ...)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]


def _extend_sys_path() -> None:
    """PYTHONPATH entries first (a forked task's interpreter started before its task's
    environment was known), then the node's own entries (MESOBATCH_SYS_PATH) last."""
    front = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[1:1] = [p for p in front if p not in sys.path]
    for entry in os.environ.get(SYS_PATH_ENV, "").split(os.pathsep):
        if entry and entry not in sys.path:
            sys.path.append(entry)


def _become(job: dict[str, Any]) -> None:
    """Take on the task: its environment, working directory and log file (or nothing
    where it has none: fds 0-3 of a fork server are its pipes)."""
    os.environ.clear()
    os.environ.update(job["env"])
    if job.get("cwd"):
        os.chdir(job["cwd"])
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    for target, key in ((1, "stdout"), (2, "stderr")):
        path = job.get(key)
        if target == 2 and path is not None and path == job.get("stdout"):
            os.dup2(1, 2)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if path else null
        os.dup2(fd, target)
        if fd != null:
            os.close(fd)
    os.close(null)


# ------------------------------------------------------------------ fork server

_EXITS_FD = 3


def _forked_task(job: dict[str, Any], inherited: list[int]) -> None:
    """In the forked child: become the task, run the call, never return."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)  # its own group, as every task: kills reach all it starts
        for fd in inherited:
            os.close(fd)
        _become(job)
        code = main([])
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(exits: int, live: set[int]) -> None:
    """Report every child that ended; first kill what it left in its group (the group
    id cannot be reused while its leader is an unreaped zombie)."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(info.si_pid, signal.SIGKILL)
        # wait4: what it used, reported with its status (the runner cannot wait for it).
        # A forked task's peak counts the pages it shares with this server: they are
        # resident in it too, and it never exec'd, so the figure is its own.
        pid, status, usage = os.wait4(info.si_pid, 0)
        live.discard(pid)
        os.write(exits, json.dumps({
            "pid": pid, "status": status, "cpu": usage.ru_utime + usage.ru_stime,
            "maxrss": usage.ru_maxrss * 1024}).encode() + b"\n")


def serve_forks() -> int:
    """Fork one task per request line on stdin until stdin ends (see forkserver.py)."""
    with contextlib.suppress(ImportError):
        import cloudpickle  # noqa: F401, PLC0415  (loaded once, for every task)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    requests, replies = 0, 1
    inherited = [wake_r, wake_w, _EXITS_FD]
    live: set[int] = set()
    os.write(replies, b'{"ready": true}\n')
    buf = b""
    while True:
        ready, _, _ = select.select([requests, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(_EXITS_FD, live)
        if requests not in ready:
            continue
        chunk = os.read(requests, 65536)
        if not chunk:
            break  # the runner is done with us
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                pid = os.fork()
            except OSError as e:
                os.write(replies, json.dumps({"error": str(e)}).encode() + b"\n")
                continue
            if pid == 0:
                _forked_task(json.loads(line), inherited)
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)  # before the runner learns the pid: kills find it
            live.add(pid)
            os.write(replies, json.dumps({"pid": pid}).encode() + b"\n")
    for pid in live:  # the runner went away: so do its tasks
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _drop_own_dir()
    if "--forkserver" in args:
        return serve_forks()
    _extend_sys_path()
    try:
        function_file = os.environ[FUNCTION_FILE_ENV]
        result_file = os.environ[RESULT_FILE_ENV]
    except KeyError as e:
        print(f"mesobatch function task: {e.args[0]} is not set; the node did not prepare "
              "this task", file=sys.stderr)
        return 2
    code = run(function_file, os.environ.get(OBJECT_DIR_ENV), result_file)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
