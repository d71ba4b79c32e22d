"""Small builders for driving the pure core in tests."""

from __future__ import annotations

import itertools
from typing import Any

from mesobatch.scheduler.contract import JobDescription
from mesobatch.scheduler.core.events import Action, Offer
from mesobatch.scheduler.core.jobs import JobSpec, build_spec
from mesobatch.scheduler.core.resources import GIB, MIB, Resources

_ids = itertools.count(1)
_offer_ids = itertools.count(1)


def job(cores: float = 1, memory: int = GIB, disk: int = GIB, *, preemptible: bool = False,
        gpus: int = 0, job_id: int | None = None, name: str | None = None) -> JobSpec:
    desc = JobDescription(cores=cores, memory=memory, disk=disk, preemptible=preemptible,
                          accelerators=({"kind": "gpu", "count": gpus},) if gpus else (),
                          name=name)
    return build_spec(next(_ids) if job_id is None else job_id, "true", desc, {}, None)


def offer(cpus: float = 2, mem_gib: float = 4, disk_gib: float = 10, *, agent: str = "a1",
          preemptible: bool = False, gpus: int = 0, hostname: str | None = None,
          ip: str = "10.0.0.1", **kw: Any) -> Offer:
    return Offer(
        f"o{next(_offer_ids)}", agent, hostname or f"host-{agent}", ip,
        Resources(int(cpus * 1000), int(mem_gib * 1024), int(disk_gib * 1024), gpus),
        preemptible=preemptible, **kw)


def of_type(actions: list[Action], cls: type) -> list[Any]:
    return [a for a in actions if isinstance(a, cls)]


__all__ = ["GIB", "MIB", "job", "of_type", "offer"]
