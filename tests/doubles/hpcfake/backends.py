"""Which fake stands in for which mesobatch batch-queue backend, and the environment
that puts it in place: its ``bin/`` first on PATH, its state directory, quick knobs.

Used by the contract suite, the backends' own tests, the Toil tests and the benchmark,
so that each runs the same fakes the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .testing import FakeCluster

DOUBLES = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class QueueFake:
    """One fake cluster program set, as a mesobatch backend sees it."""

    backend: str  #: the mesobatch backend name
    package: str  #: tests/doubles/<package>
    state_var: str  #: where its state directory is named
    knobs: dict[str, str] = field(default_factory=dict)

    @property
    def bin_dir(self) -> str:
        return str(DOUBLES / self.package / "bin")

    def environment(self, state_dir: str | os.PathLike[str], cores: int = 64,
                    path: str | None = None) -> dict[str, str]:
        """The variables to set (on top of the caller's) for this fake in ``state_dir``
        with a host of ``cores`` cores."""
        prefix = self.state_var.rsplit("_", 1)[0]  # FAKE_LSF_DIR -> FAKE_LSF
        rest = os.environ.get("PATH", "") if path is None else path
        return {"PATH": self.bin_dir + os.pathsep + rest, self.state_var: str(state_dir),
                f"{prefix}_NCPUS": str(cores), **self.knobs}

    def cluster(self, state_dir: Path, cores: int = 64) -> FakeCluster:
        """Its programs for a test to run directly (same state, same knobs)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment(state_dir, cores)
        env.pop("PATH")
        return FakeCluster(self.bin_dir, self.state_var, state_dir, env)


FAKES: dict[str, QueueFake] = {
    "lsf": QueueFake("lsf", "lsf", "FAKE_LSF_DIR", {"FAKE_LSF_TERMINATE_INTERVAL": "0.3"}),
    "pbs": QueueFake("pbs", "pbs", "FAKE_PBS_DIR", {
        "FAKE_PBS_FLAVOR": "pbspro", "FAKE_PBS_SERVER": "pbsserver",
        "FAKE_PBS_KILL_DELAY": "0.3"}),
    "torque": QueueFake("torque", "pbs", "FAKE_PBS_DIR", {
        "FAKE_PBS_FLAVOR": "torque", "FAKE_PBS_SERVER": "pbsserver",
        "FAKE_PBS_KILL_DELAY": "0.3"}),
    "htcondor": QueueFake("htcondor", "htcondor", "FAKE_CONDOR_DIR", {
        "FAKE_CONDOR_KILL_DELAY": "0.3"}),
}
