"""A test double of Apache Mesos 1.11 (master + agents) speaking the v1 HTTP APIs.

It is an independent protocol peer for mesobatch's tests and benchmarks: it never imports
mesobatch. See ``MesosDouble`` (in-process), ``DoubleProcess`` (child process) and the
``python -m tests.doubles.mesos`` command line.
"""

from .cluster import AgentSpec, Cluster, ClusterOptions
from .double import MesosDouble
from .process import ControlClient, DoubleProcess, wait_for_leader

__all__ = [
    "AgentSpec",
    "Cluster",
    "ClusterOptions",
    "ControlClient",
    "DoubleProcess",
    "MesosDouble",
    "wait_for_leader",
]
