"""mesobatch as a Toil batch-system plugin.

Toil (9.x) imports every top-level module named ``toil_batch_system_*``; ours,
``toil_batch_system_mesobatch``, calls :func:`register`, which registers ``mesos`` (in
place of Toil's own, which no longer installs on current Python) and
``mesobatch_<name>`` for every other mesobatch backend. Each name's factory returns a
class that Toil constructs as ``Cls(config=..., maxCores=..., maxMemory=..., maxDisk=...)``.

Toil is imported only here and only when Toil itself loads the plugin.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, cast

from ..scheduler.api import BatchSystem
from ..scheduler.contract import InsufficientSystemResources, JobDescription
from ..scheduler.options import default_config_path, load_config_file, resolve
from ..scheduler.registry import backend_names, load_backend
from .toil_options import add_toil_arguments, arguments_from_config, set_toil_options

#: The command Toil starts every job with (as a bare name unless TOIL_CHECK_ENV=True).
WORKER_ENTRY_POINT = "_toil_worker"


def toil_name(backend: str) -> str:
    """The --batchSystem name of a mesobatch backend in Toil."""
    return "mesos" if backend == "mesos" else f"mesobatch_{backend}"


def worker_search_path(path: str, executable: str) -> str | None:
    """PATH for Toil's jobs: the leader's interpreter directory first, if it holds
    ``_toil_worker`` (a virtualenv's bin/), so that jobs run the same Toil as the
    leader even when the virtualenv was not activated. None if PATH needs no change.

    A node without that directory simply falls through to the rest of PATH."""
    bindir = os.path.dirname(executable) if executable else ""
    if not bindir or not os.path.isfile(os.path.join(bindir, WORKER_ENTRY_POINT)):
        return None
    entries = [e for e in path.split(os.pathsep) if e]
    if entries and entries[0] == bindir:
        return None
    return os.pathsep.join([bindir, *(e for e in entries if e != bindir)])


def _toil_limit(value: float | None) -> float | None:
    """Toil passes sys.maxsize for "no --maxCores/--maxMemory/--maxDisk given"."""
    return None if value is None or value >= sys.maxsize else value


class ToilBatchSystem(BatchSystem):
    """A mesobatch batch system as Toil's AbstractScalableBatchSystem.

    Beyond mesobatch's API it speaks Toil's types (results, node infos and resource
    errors are Toil's classes), takes its options from Toil's Config, and has Toil's
    workers clean their node's work directory after the workflow's last job there
    (``--cleanWorkDir``), as Toil's own batch systems do.
    """

    def __init__(self, config: Any, maxCores: float | None = None,
                 maxMemory: float | None = None, maxDisk: float | None = None) -> None:
        cls = self.backend_class
        arguments: dict[str, Any] = arguments_from_config(cls.options_class, config)
        arguments.update(maxCores=_toil_limit(maxCores), maxMemory=_toil_limit(maxMemory),
                         maxDisk=_toil_limit(maxDisk))
        logs = getattr(config, "batch_logs_dir", None)
        if logs and "log_dir" not in arguments:
            arguments["log_dir"] = logs
        path = default_config_path()
        options = resolve(cls.options_class, arguments, backend=cls.name,
                          config=load_config_file(path), config_path=str(path))
        super().__init__(config, options=options)
        # What Toil's own batch systems expose; Toil's tests and autoscaler read them.
        self.maxCores = options.max_cores
        self.maxMemory = options.max_memory
        self.maxDisk = options.max_disk
        from toil.batchSystems.abstractBatchSystem import WorkerCleanupInfo  # noqa: PLC0415

        self.workerCleanupInfo = WorkerCleanupInfo(
            work_dir=getattr(config, "workDir", None),
            coordination_dir=getattr(config, "coordination_dir", None),
            workflow_id=self.workflow_id,
            clean_work_dir=getattr(config, "cleanWorkDir", "always"),
        )
        path_for_jobs = worker_search_path(os.environ.get("PATH", ""), sys.executable)
        if path_for_jobs is not None:
            self.setEnv("PATH", path_for_jobs)  # Toil's --setEnv PATH=... comes later, wins

    # ------------------------------------------------------------------ options
    @classmethod
    def add_options(cls, parser: Any) -> None:
        add_toil_arguments(cls.backend_class.options_class, cls.backend_class.name, parser)

    @classmethod
    def setOptions(cls, setOption: Callable[..., Any]) -> None:
        set_toil_options(cls.backend_class.options_class, setOption)

    @classmethod
    def supportsWorkerCleanup(cls) -> bool:
        return True

    def getWorkerContexts(self) -> list[Any]:
        """Toil's workers run inside these; the last one to leave a node cleans it."""
        from toil.batchSystems.cleanup_support import WorkerCleanupContext  # noqa: PLC0415

        return [WorkerCleanupContext(self.workerCleanupInfo)]

    def set_message_bus(self, message_bus: Any) -> None:
        """Toil connects its batch systems to its message bus; we send nothing on it."""

    def get_batch_logs_dir(self) -> str:
        return self.log_dir

    def format_std_out_err_glob(self, toil_job_id: int) -> str:
        """The files holding a job's output, on this machine (Toil's BatchSystemSupport
        has this; on mesos too, the executor sends each job's log back here)."""
        return os.path.join(self.log_dir, f"{int(toil_job_id)}-*.log")

    # ------------------------------------------------------------------ jobs
    def issueBatchJob(self, command: str, job_desc: Any = None,
                      job_environment: Mapping[str, str] | None = None) -> int:
        try:
            return super().issueBatchJob(command, job_desc, job_environment)
        except InsufficientSystemResources as e:
            raise self._toil_insufficient(job_desc, e) from e

    def check_resource_request(self, requirer: Any) -> None:
        """Toil's check: raise its InsufficientSystemResources if ``requirer`` can never
        run here (AttributeError if it lacks cores, memory, disk or accelerators)."""
        desc = JobDescription(cores=requirer.cores, memory=requirer.memory, disk=requirer.disk,
                              accelerators=requirer.accelerators, name=str(requirer))
        try:
            self.validate_job("true", desc)
        except InsufficientSystemResources as e:
            raise self._toil_insufficient(requirer, e) from e

    def shutdown(self) -> None:
        """Toil expects no process of the workflow to outlive this call: kill what runs
        and wait (bounded by the kill grace period) until each kill is confirmed, then
        stop. Without the wait, Mesos ends the tasks a moment after we return."""
        if not self._closed:
            self.killBatchJobs(self.getIssuedBatchJobIDs())
        super().shutdown()

    def getUpdatedBatchJob(self, maxWait: float | None) -> Any:
        from toil.batchSystems.abstractBatchSystem import (  # noqa: PLC0415
            BatchJobExitReason,
            UpdatedBatchJobInfo,
        )

        info = super().getUpdatedBatchJob(maxWait)
        if info is None:
            return None
        reason = None if info.exitReason is None else BatchJobExitReason(int(info.exitReason))
        return UpdatedBatchJobInfo(jobID=info.jobID, exitStatus=info.exitStatus,
                                   exitReason=reason, wallTime=info.wallTime,
                                   backing_id=info.backing_id)

    def getNodes(self, preemptible: bool | None = None, timeout: float | None = 600
                 ) -> dict[str, Any]:
        from toil.batchSystems.abstractBatchSystem import NodeInfo  # noqa: PLC0415

        out = {}
        for address, info in super().getNodes(preemptible, timeout).items():
            fields = info._asdict()
            filtered = fields.pop("filtered")
            out[address] = NodeInfo(**fields)
            out[address].filtered = filtered  # rejected by nodeFilter: no new jobs there
        return out

    def _toil_insufficient(self, requirer: Any, error: InsufficientSystemResources
                           ) -> Exception:
        """Toil's exception for ours (toil-cwl-runner and the WDL runner catch Toil's)."""
        from toil.batchSystems.abstractBatchSystem import (  # noqa: PLC0415
            InsufficientSystemResources as ToilInsufficient,
        )

        resource = "accelerators" if error.resource == "GPUs" else error.resource
        if not hasattr(requirer, resource):
            return error
        available = {"cores": self.maxCores, "memory": self.maxMemory,
                     "disk": self.maxDisk}.get(resource)
        return cast(Exception, ToilInsufficient(
            requirer, resource, available, batch_system=type(self).__name__,
            details=[f"({error})"]))


_CLASSES: dict[str, type[ToilBatchSystem]] = {}


def toil_batch_system_class(backend: str) -> type[ToilBatchSystem]:
    """The Toil batch-system class for a mesobatch backend (made once, then cached)."""
    cls = _CLASSES.get(backend)
    if cls is None:
        from toil.batchSystems.abstractBatchSystem import (  # noqa: PLC0415
            AbstractScalableBatchSystem,
        )

        title = "".join(p.capitalize() for p in backend.split("_"))
        backend_class = load_backend(backend)
        bases = (*backend_class.batch_system_extras, ToilBatchSystem)
        cls = cast(type[ToilBatchSystem], type(f"Mesobatch{title}BatchSystem", bases, {
            "backend_class": backend_class,
            "__module__": __name__,
            "__doc__": f"mesobatch's {backend} backend as Toil's --batchSystem "
                       f"{toil_name(backend)}",
        }))
        # A virtual subclass: Toil's isinstance checks (autoscaler) see what we implement.
        AbstractScalableBatchSystem.register(cls)
        _CLASSES[backend] = cls
    return cls


def register() -> None:
    """Register every mesobatch backend with Toil (what importing the plugin does)."""
    from toil.batchSystems.registry import add_batch_system_factory  # noqa: PLC0415

    for backend in backend_names():
        add_batch_system_factory(toil_name(backend),
                                 functools.partial(toil_batch_system_class, backend))
