"""Options of the mesos backend (light: importing this loads no Mesos client code)."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from ..options import (
    CommonOptions,
    OptionError,
    opt,
    parse_bool,
    parse_seconds,
    parse_size,
    parse_str,
)


def _master(value: object) -> str:
    from .master import MasterAddressError, StaticMaster  # noqa: PLC0415

    text = parse_str(value).strip()
    if text.startswith("zk://"):
        return text
    try:
        StaticMaster(text)
    except MasterAddressError as e:
        raise ValueError(str(e).split(": ", 1)[1]) from None
    return text


def _role(value: object) -> str:
    role = parse_str(value)
    bad = (not role or role.startswith("/") or role.endswith("/") or "//" in role
           or any(part in (".", "..", "*") or part.startswith("-")
                  for part in role.split("/"))
           or any(c.isspace() for c in role))
    if bad and role != "*":
        raise ValueError("expected a Mesos role name such as 'batch' or 'eng/batch' (no "
                         "spaces, no '.', '..' or '*' parts, no part starting with '-')")
    return role


@dataclass(frozen=True)
class MesosOptions(CommonOptions):
    """How to reach Mesos and how to behave as a framework."""

    mesos_endpoint: str = opt(
        "mesosMaster", parse=_master, default="localhost:5050", aliases=("mesosEndpoint",),
        env_aliases=("MESOS_MASTER",), metavar="ADDRESS",
        help="the Mesos master: host:port, http(s)://host:port, or "
             "zk://host:2181[,host:2181]/mesos (also $MESOS_MASTER)")
    mesos_role: str | None = opt(
        "mesosRole", parse=_role, metavar="ROLE",
        help="the role to take offers for (uses MULTI_ROLE); default: no role ('*')")
    mesos_name: str = opt(
        "mesosName", parse=parse_str, default="mesobatch", metavar="NAME",
        help="the framework's name in the Mesos UI")
    mesos_framework_id: str | None = opt(
        "mesosFrameworkId", parse=parse_str, metavar="ID",
        help="subscribe as this existing framework (after a scheduler restart, within its "
             "failover timeout)")
    mesos_failover_timeout: float = opt(
        "mesosFailoverTimeout", parse=parse_seconds, default=600.0, metavar="SECONDS",
        help="how long Mesos keeps our tasks running while the scheduler is away")
    mesos_checkpoint: bool = opt(
        "mesosCheckpoint", parse=parse_bool, default=True, metavar="BOOL",
        help="let executors and tasks survive agent restarts")
    mesos_user: str | None = opt(
        "mesosUser", parse=parse_str, default_factory=getpass.getuser, metavar="USER",
        help="run tasks as this user on the agents (default: the current user)")
    mesos_offer_hold: float = opt(
        "mesosOfferHold", parse=parse_seconds, default=3.0, metavar="SECONDS",
        help="keep unused offers this long, so a new job launches at once")
    mesos_decline_filter: float = opt(
        "mesosDeclineFilter", parse=parse_seconds, default=5.0, metavar="SECONDS",
        help="refuse_seconds sent when declining offers we held and did not use")
    mesos_unreachable_timeout: float = opt(
        "mesosUnreachableTimeout", parse=parse_seconds, default=900.0, metavar="SECONDS",
        help="report a job whose agent has been unreachable this long as lost (PARTITION) "
             "and kill it should the agent come back")
    executor_command: str | None = opt(
        "executorCommand", parse=parse_str, metavar="COMMAND",
        help="the command agents run to start our executor (default: this Python, "
             "'-m mesobatch.executor')")
    mesos_executor_memory: int = opt(
        "mesosExecutorMemory", parse=parse_size, default=32 * 1024**2, metavar="SIZE",
        help="memory reserved for the executor on each agent")
    mesos_node_report_interval: float = opt(
        "mesosNodeReportInterval", parse=parse_seconds, default=30.0, metavar="SECONDS",
        help="how often each executor reports its node's load")

    def validate(self) -> None:
        if self.mesos_node_report_interval <= 0:
            raise OptionError("invalid value for --mesosNodeReportInterval: expected seconds "
                              "> 0")
