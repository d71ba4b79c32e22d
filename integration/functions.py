"""Python functions as jobs: a concurrent.futures.Executor over any backend.

    with mesobatch.FunctionExecutor("mesos", mesosMaster="10.0.0.2:5050") as ex:
        futures = [ex.submit(f, x) for x in xs]                  # 1 core, 512 MiB each
        big = ex.with_resources(cores=4, memory="16G", gpus=1).submit(g, data)
        table = ex.put(load_table())                             # shipped once per node
        sums = list(ex.map(lambda row: table[row].sum(), rows))

Each call becomes one job. The function and its arguments are cloudpickled into a blob
of the resource store (content-addressed); the node fetches it, checks its sha256, and
runs the call in the task's own process (executor/function_task.py), which writes the
pickled value, or the exception with its traceback, back to the store; the Future gets
the value or raises the exception, with the remote traceback as its ``__cause__``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import io
import logging
import os
import pickle
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..executor import function_task as ft
from ..executor.protocol import (
    RESULT_ID_ENV,
    SHIP_ENV,
    ResourceRef,
    format_refs,
    log_file_name,
    log_path,
)
from ..scheduler.contract import JobDescription
from ..scheduler.options import parse_size

if TYPE_CHECKING:
    from ..deploy.resources import ResourceService
    from ..scheduler.api import BatchSystem

log = logging.getLogger(__name__)

T = TypeVar("T")


# ------------------------------------------------------------------ public types


@dataclass(frozen=True)
class CallResources:
    """What one call asks for: the job's cores, memory, disk (bytes or sizes such as
    "4G"), GPUs, preemptibility and wall time (seconds)."""

    cores: float = 1.0
    memory: int | str = "512M"
    disk: int | str = "512M"
    gpus: int = 0
    preemptible: bool = False
    walltime: float | None = None

    def job_description(self, name: str) -> JobDescription:
        accelerators = [{"kind": "gpu", "count": self.gpus}] if self.gpus else []
        return JobDescription(
            command=ft.COMMAND, cores=self.cores, memory=parse_size(self.memory),
            disk=parse_size(self.disk), preemptible=self.preemptible,
            accelerators=accelerators, name=name, walltime=self.walltime)


@dataclass(frozen=True)
class Shipped:
    """An object stored once (FunctionExecutor.put) and fetched once per node; pass it
    as an argument (or inside one) and the call receives the object itself."""

    ref: ResourceRef
    type_name: str

    def __reduce__(self) -> Any:
        raise TypeError("a Shipped object travels only as an argument of a "
                        "FunctionExecutor call")


class FunctionJobError(Exception):
    """A call's job ended without a result (killed, lost, out of memory, ...)."""

    def __init__(self, message: str, job_id: int | None = None,
                 exit_status: int | None = None, exit_reason: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.exit_status = exit_status
        self.exit_reason = exit_reason


#: how much of a failed call's log its FunctionJobError quotes
LOG_TAIL_LINES = 20


def _about_log(log_dir: str, job_id: int, name: str) -> str:
    """Where the job's log is, with its last lines while it can be read here (a log
    directory of the batch system's own goes at shutdown, with the error still held)."""
    path = log_path(log_dir, job_id, name)
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 16384))
            lines = f.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:  # on another node (Mesos: the task's sandbox)
        return f"its log is {log_file_name(job_id, name)} where the job ran"
    tail = "\n".join(f"  | {line}" for line in lines) if lines else "  (empty)"
    return f"the end of its log, {path}:\n{tail}"


class ResourceRefused(FunctionJobError):
    """The node would not run the call: a resource was missing or failed its hash check."""


class RemoteError(Exception):
    """An exception raised by a call whose own class could not be loaded here."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised on a node (the exception's ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text.rstrip()


# ------------------------------------------------------------------ pickling


def _pickle(obj: Any, shipped: list[ResourceRef] | None) -> bytes:
    """cloudpickle ``obj``; Shipped objects inside become references (collected in
    ``shipped``), or are refused when ``shipped`` is None."""
    import cloudpickle  # noqa: PLC0415  (imported on first use: it is not light)

    class CallPickler(cloudpickle.Pickler):  # type: ignore[misc]
        def persistent_id(self, value: Any) -> Any:
            if type(value) is not Shipped:
                return None
            if shipped is None:
                raise TypeError("a Shipped object cannot itself be put inside another")
            shipped.append(value.ref)
            return (ft.OBJECT_TAG, value.ref.sha256)

    buf = io.BytesIO()
    CallPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _decode(data: bytes, job: int) -> tuple[bool, Any]:
    """(True, value) or (False, exception to raise) from a result file's bytes."""
    try:
        outcome = pickle.loads(data)
    except Exception as e:
        return False, FunctionJobError(f"job {job}: its result could not be unpickled here "
                                       f"({type(e).__name__}: {e})", job)
    kind = outcome[0]
    if kind == "ok":
        return True, outcome[1]
    if kind == "refused":
        return False, ResourceRefused(f"job {job}: {outcome[1]}", job)
    _, pickled, name, message, text = outcome
    exc: BaseException | None = None
    if pickled is not None:
        try:
            exc = pickle.loads(pickled)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(f"{name}: {message}")
    exc.__cause__ = RemoteTraceback(text)
    return False, exc


# ------------------------------------------------------------------ the executor


@dataclass
class _Call:
    future: concurrent.futures.Future[Any]
    result_id: str
    ref: ResourceRef
    name: str


class _Engine:
    """What every view of one FunctionExecutor shares."""

    def __init__(self, bs: BatchSystem, owns: bool) -> None:
        self.bs = bs
        self.owns = owns
        self.service: ResourceService = bs.resource_service()
        self.lock = threading.Lock()
        self.calls: dict[int, _Call] = {}
        self.uses: dict[str, int] = {}  # call blob sha -> calls in flight using it
        self.objects: list[ResourceRef] = []
        self.closed = False
        self.finished = threading.Event()
        self.collector = threading.Thread(target=self._collect, name="mesobatch-functions",
                                          daemon=True)
        self.collector.start()

    # ------------------------------------------------------------------ calls
    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
               resources: CallResources) -> concurrent.futures.Future[Any]:
        if self.closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        objects: list[ResourceRef] = []
        blob = ft.blob_header() + _pickle((fn, args, kwargs), objects)
        # counted as used before it is stored: an identical call finishing meanwhile
        # must not delete it under this one
        ref = ResourceRef("fn", hashlib.sha256(blob).hexdigest(), len(blob))
        with self.lock:
            self.uses[ref.sha256] = self.uses.get(ref.sha256, 0) + 1
        rid = ""
        try:
            self.service.store.put_bytes(blob, "fn")
            rid = uuid.uuid4().hex
            self.service.store.expect_result(rid)  # the resource server takes only these
            name = "fn-" + str(getattr(fn, "__qualname__", None) or type(fn).__name__)[:50]
            env = {SHIP_ENV: format_refs([ref, *sorted(set(objects))]), RESULT_ID_ENV: rid}
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            with self.lock:
                if self.closed:
                    raise RuntimeError("cannot schedule new futures after shutdown")
                job = self.bs.issueBatchJob(ft.COMMAND, resources.job_description(name), env)
                self.calls[job] = _Call(future, rid, ref, name)
        except BaseException:
            with self.lock:
                self._release(ref)
            if rid:
                self.service.store.forget_result(rid)
            raise
        future.add_done_callback(functools.partial(self._done, job))
        return future

    def put(self, obj: Any) -> Shipped:
        ref = self.service.store.put_bytes(_pickle(obj, None), "obj")
        with self.lock:
            self.objects.append(ref)
        return Shipped(ref, type(obj).__qualname__)

    def _release(self, ref: ResourceRef) -> None:
        """A call no longer needs its blob (lock held); drop it when no call does."""
        left = self.uses.get(ref.sha256, 0) - 1
        if left > 0:
            self.uses[ref.sha256] = left
        else:
            self.uses.pop(ref.sha256, None)
            self.service.store.delete([ref])

    def _done(self, job: int, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled():
            return
        with self.lock:
            call = self.calls.pop(job, None)
            if call is not None:
                self._release(call.ref)
        if call is not None:
            self.service.store.forget_result(call.result_id)
        if call is not None:  # killing may wait for the node: not in cancel()'s thread
            threading.Thread(target=self.bs.killBatchJobs, args=([job],),
                             name=f"cancel-{job}", daemon=True).start()

    # ------------------------------------------------------------------ results
    def _collect(self) -> None:
        while not self.finished.is_set():
            if self.bs.is_shut_down:
                self._fail_all("the batch system was shut down before the call finished")
                return
            info = self.bs.getUpdatedBatchJob(0.2)
            if info is None:
                continue
            with self.lock:
                call = self.calls.pop(info.jobID, None)
                if call is not None:
                    self._release(call.ref)
            if call is None:
                continue
            data = self.service.store.take_result(call.result_id)
            if not call.future.set_running_or_notify_cancel():
                continue
            reason = info.exitReason.name if info.exitReason is not None else "unknown"
            if data is None:
                call.future.set_exception(FunctionJobError(
                    f"job {info.jobID} ({call.name}) ended ({reason}, exit status "
                    f"{info.exitStatus}) without a result; "
                    f"{_about_log(self.bs.log_dir, info.jobID, call.name)}", info.jobID,
                    info.exitStatus, reason))
                continue
            ok, value = _decode(data, info.jobID)
            if ok:
                call.future.set_result(value)
            else:
                if isinstance(value, FunctionJobError):
                    value.exit_status, value.exit_reason = info.exitStatus, reason
                call.future.set_exception(value)

    def _fail_all(self, message: str) -> None:
        with self.lock:
            calls = list(self.calls.items())
            self.calls.clear()
        for job, call in calls:
            self.service.store.forget_result(call.result_id)
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(FunctionJobError(f"job {job}: {message}", job))

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        with self.lock:
            self.closed = True
            futures = [c.future for c in self.calls.values()]
        if cancel_futures:
            for f in futures:
                f.cancel()
        if wait:
            concurrent.futures.wait(futures)
            self._finish()
        else:
            def finish_later() -> None:
                concurrent.futures.wait(futures)
                self._finish()

            threading.Thread(target=finish_later, name="mesobatch-functions-shutdown",
                             daemon=True).start()

    def _finish(self) -> None:
        if self.finished.is_set():
            return
        self.finished.set()
        if threading.current_thread() is not self.collector:
            self.collector.join(timeout=5)
        with self.lock:
            objects, self.objects = self.objects, []
        self.service.store.delete(objects)
        if self.owns:
            self.bs.shutdown()


class FunctionExecutor(concurrent.futures.Executor):
    """Run Python calls as jobs of a batch system (``submit``, ``map``, ``shutdown``,
    ``with``).

    ``backend`` is a backend name (the executor makes and owns a batch system, with
    ``options`` as in ``mesobatch.batch_system``) or a BatchSystem (then this executor
    consumes every result of it: do not issue other jobs there). ``resources`` are the
    default per call; ``with_resources(...)`` gives other calls other resources.
    """

    def __init__(self, backend: str | BatchSystem = "local", *,
                 resources: CallResources | None = None, **options: Any) -> None:
        if isinstance(backend, str):
            from ..scheduler.registry import batch_system  # noqa: PLC0415

            self._engine = _Engine(batch_system(backend, **options), owns=True)
        else:
            if options:
                raise TypeError("options go to the batch system; this one already exists")
            self._engine = _Engine(backend, owns=False)
        self.resources = resources or CallResources()

    @property
    def batch_system(self) -> BatchSystem:
        return self._engine.bs

    def with_resources(self, **resources: Any) -> FunctionExecutor:
        """This executor with other per-call resources, e.g. ``cores=4, memory="16G",
        gpus=1`` (keywords of CallResources); it shares everything else."""
        view = FunctionExecutor.__new__(FunctionExecutor)
        view._engine = self._engine
        base = self.resources
        view.resources = CallResources(**{**base.__dict__, **resources})
        return view

    def submit(self, fn: Callable[..., T], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[T]:
        return self._engine.submit(fn, args, kwargs, self.resources)

    def put(self, obj: Any) -> Shipped:
        """Store ``obj`` once; calls given the returned handle receive ``obj``, and each
        node fetches it once however many calls use it. Kept until shutdown."""
        return self._engine.put(obj)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new calls; with ``cancel_futures`` unfinished calls are cancelled (their
        jobs killed); with ``wait`` return when every call has finished. A batch system
        this executor made is shut down then."""
        self._engine.shutdown(wait, cancel_futures)

