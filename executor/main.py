"""`mesobatch-executor`: the process a Mesos agent starts for the framework (one per
agent). Configured by the agent's MESOS_* variables and a few of ours:
MESOBATCH_REPORT_INTERVAL (seconds between node reports, default 30),
MESOBATCH_KILL_GRACE (default 5), MESOBATCH_RUNNING_DELAY (seconds a task runs before
its TASK_RUNNING is sent, default 0.1), MESOBATCH_EXECUTOR_LOG_LEVEL (default INFO)."""

from __future__ import annotations

import logging
import os
import signal
import sys


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("MESOBATCH_EXECUTOR_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from .driver import MesosExecutorDriver  # noqa: PLC0415
    from .executor import MesobatchExecutor  # noqa: PLC0415

    executor = MesobatchExecutor(
        report_interval=float(os.environ.get("MESOBATCH_REPORT_INTERVAL", "30")),
        kill_grace=float(os.environ.get("MESOBATCH_KILL_GRACE", "5")),
        running_delay=float(os.environ.get("MESOBATCH_RUNNING_DELAY", "0.1")),
    )
    try:
        driver = MesosExecutorDriver(executor)
    except RuntimeError as e:
        print(f"mesobatch-executor: {e}", file=sys.stderr)
        return 2
    # The agent (or a user) stopping us: behave as on SHUTDOWN.
    signal.signal(signal.SIGTERM, lambda *_: executor.shutdown(driver))
    status = driver.run()
    executor.runner.close(grace=0.5, timeout=2)
    return 0 if status == "stopped" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
