"""mesobatch: a batch system for workflow engines, built as an Apache Mesos framework.

Start here::

    import mesobatch
    with mesobatch.batch_system("local", maxCores=2, maxMemory="4G") as bs:
        job = bs.issueBatchJob("echo hello", mesobatch.JobDescription(cores=1, memory=2**30))
        print(bs.getUpdatedBatchJob(maxWait=10))
"""

from .integration.functions import (
    CallResources,
    FunctionExecutor,
    FunctionJobError,
    RemoteError,
    RemoteTraceback,
    ResourceRefused,
    Shipped,
)
from .scheduler.api import BatchSystem, NodeType
from .scheduler.contract import (
    EXIT_STATUS_UNAVAILABLE,
    AcquisitionTimeoutException,
    BatchJobExitReason,
    DeadlockException,
    InsufficientSystemResources,
    JobDescription,
    NodeInfo,
    UpdatedBatchJobInfo,
)
from .scheduler.core.jobs import InvalidJob
from .scheduler.options import OptionError
from .scheduler.registry import (
    BackendEntry,
    availability,
    backend_names,
    batch_system,
    batch_system_class,
    register_backend,
)

__version__ = "0.1.0"

__all__ = [
    "EXIT_STATUS_UNAVAILABLE",
    "AcquisitionTimeoutException",
    "BackendEntry",
    "BatchJobExitReason",
    "BatchSystem",
    "CallResources",
    "DeadlockException",
    "FunctionExecutor",
    "FunctionJobError",
    "InsufficientSystemResources",
    "InvalidJob",
    "JobDescription",
    "NodeInfo",
    "NodeType",
    "OptionError",
    "RemoteError",
    "RemoteTraceback",
    "ResourceRefused",
    "Shipped",
    "UpdatedBatchJobInfo",
    "availability",
    "backend_names",
    "batch_system",
    "batch_system_class",
    "register_backend",
]
