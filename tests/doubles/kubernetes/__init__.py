"""A test double of a Kubernetes API server (v1.32 shapes) with a pretend scheduler, Job
controller, garbage collector and kubelets that run pods' commands as local processes.

It never imports mesobatch. See ``KubernetesDouble`` and README.md.
"""

from .cluster import NodeSpec
from .double import KubernetesDouble

__all__ = ["KubernetesDouble", "NodeSpec"]
