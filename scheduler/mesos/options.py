"""Options of the mesos backend (light: importing this loads no Mesos client code)."""

from __future__ import annotations

import contextlib
import getpass
import math
import os
import stat
from dataclasses import dataclass

from ..options import (
    CommonOptions,
    OptionError,
    enforce_memory_option,
    opt,
    parse_bool,
    parse_path,
    parse_seconds,
    parse_size,
    parse_str,
)


def _master(value: object) -> str:
    from .master import MasterAddressError, StaticMaster  # noqa: PLC0415

    text = parse_str(value).strip()
    try:
        if text.startswith("zk://"):
            from .zookeeper import parse_zk_url  # noqa: PLC0415

            parse_zk_url(text)
        else:
            StaticMaster(text)
    except MasterAddressError as e:
        raise ValueError(str(e).split(": ", 1)[1]) from None
    return text


def _show_master(value: object) -> str:
    """A master address with any user:password@ masked (as parse_zk_url reads it:
    credentials end at the last '@', so a password may hold '/')."""
    text = str(value)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        text = f"{scheme}://***@{rest[rest.rfind('@') + 1:]}"
    return repr(text)


def read_secret(path: str, option: str) -> str:
    """A secret from a file that only its owner may read; never echoed anywhere."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise OptionError(f"refusing --{option} {path}: not a regular file")
        if st.st_mode & 0o004:
            raise OptionError(f"refusing --{option} {path}: the file is readable by everyone "
                              f"(mode {st.st_mode & 0o777:o}); chmod 600 it")
        with open(path, encoding="utf-8") as f:
            secret = f.read().strip()
    except OSError as e:
        raise OptionError(f"cannot read --{option} {path}: {e.strerror}") from None
    if not secret:
        raise OptionError(f"--{option} {path} is empty")
    return secret


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


DEPLOY_MODES = ("auto", "bundle", "installed")

#: the least cpus Mesos accepts for an executor without a warning (MIN_CPUS in Mesos 1.11;
#: "... will be mandatory in future releases")
EXECUTOR_MIN_CPUS = 0.01


def _executor_cpus(value: object) -> float:
    cpus = math.nan
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            cpus = float(value)
    if not math.isfinite(cpus) or (cpus != 0 and cpus < EXECUTOR_MIN_CPUS):
        raise ValueError(f"expected 0 or a number of cores >= {EXECUTOR_MIN_CPUS:g} (Mesos's "
                         "minimum for an executor)")
    return cpus


def _deploy_mode(value: object) -> str:
    mode = parse_str(value).strip().lower()
    if mode not in DEPLOY_MODES:
        raise ValueError("expected one of " + ", ".join(DEPLOY_MODES))
    return mode


def _host_port(value: object) -> str:
    text = parse_str(value).strip()
    host, port = split_host_port(text)
    if not host or (port is not None and not 0 <= port < 65536):
        raise ValueError("expected HOST or HOST:PORT (an address the agents can reach)")
    return text


def split_host_port(text: str) -> tuple[str, int | None]:
    """'h:80' -> ('h', 80); '[::1]:80' -> ('::1', 80); 'h' -> ('h', None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"not a port: {port!r}")
    return host, int(port) if port else None


@dataclass(frozen=True)
class MesosOptions(CommonOptions):
    """How to reach Mesos and how to behave as a framework."""

    mesos_endpoint: str = opt(
        "mesosMaster", parse=_master, default="localhost:5050", aliases=("mesosEndpoint",),
        env_aliases=("MESOS_MASTER",), metavar="ADDRESS", show=_show_master,
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
    mesos_principal: str | None = opt(
        "mesosPrincipal", parse=parse_str, metavar="PRINCIPAL",
        help="authenticate as this principal (HTTP Basic; needs --mesosSecretFile)")
    mesos_secret_file: str | None = opt(
        "mesosSecretFile", parse=parse_path, metavar="FILE",
        help="file holding the principal's secret (must not be readable by everyone)")
    mesos_tls: bool = opt(
        "mesosTls", parse=parse_bool, default=False, metavar="BOOL",
        help="talk https to masters found in ZooKeeper or given as host:port "
             "(implied by an https:// --mesosMaster)")
    mesos_ca_bundle: str | None = opt(
        "mesosCaBundle", parse=parse_path, metavar="FILE",
        help="CA certificates to verify the master's TLS certificate with (default: the "
             "system's)")
    mesos_tls_verify: bool = opt(
        "mesosTlsVerify", parse=parse_bool, default=True, metavar="BOOL",
        help="verify the master's TLS certificate (turn off only for tests)")
    zk_timeout: float = opt(
        "zkTimeout", parse=parse_seconds, default=10.0, metavar="SECONDS",
        help="give up starting when ZooKeeper does not answer within this")
    zk_credentials_file: str | None = opt(
        "zkCredentialsFile", parse=parse_path, metavar="FILE",
        help="file holding user:password for ZooKeeper digest auth (instead of putting "
             "them in the zk:// URL)")
    mesos_unreachable_timeout: float = opt(
        "mesosUnreachableTimeout", parse=parse_seconds, default=0.0, metavar="SECONDS",
        help="report a job whose agent Mesos has declared unreachable as lost (PARTITION) "
             "after this many more seconds (0: at once), and kill it should the agent "
             "come back")
    executor_command: str | None = opt(
        "executorCommand", parse=parse_str, metavar="COMMAND",
        help="the command agents run to start our executor, for sites that install "
             "mesobatch on the agents (default: the executor bundle, shipped; see "
             "--executorDeploy)")
    executor_deploy: str = opt(
        "executorDeploy", parse=_deploy_mode, default="auto", metavar="MODE",
        help="how agents get the executor: 'bundle' ships a self-contained zipapp (as a "
             "cached CommandInfo URI) that any python3 >= 3.10 runs; 'installed' runs "
             "--executorCommand, or this Python with '-m mesobatch.executor'; 'auto' is "
             "'installed' when --executorCommand is given, else 'bundle'")
    executor_bundle: str | None = opt(
        "executorBundle", parse=parse_path, metavar="FILE",
        help="ship this bundle (from 'mesobatch deploy bundle') instead of one built "
             "from this installation")
    executor_python: str = opt(
        "executorPython", parse=parse_str, default="python3", metavar="COMMAND",
        help="the Python agents run the bundle with (found on the executor's PATH)")
    resource_address: str | None = opt(
        "resourceAddress", parse=_host_port, metavar="HOST[:PORT]",
        help="where agents reach this scheduler's resource server (default: this "
             "machine's address on the route to the master, a free port)")
    mesos_executor_memory: int = opt(
        "mesosExecutorMemory", parse=parse_size, default=32 * 1024**2, metavar="SIZE",
        help="memory reserved for the executor on each agent")
    mesos_executor_cpus: float = opt(
        "mesosExecutorCpus", parse=_executor_cpus, default=EXECUTOR_MIN_CPUS, metavar="CORES",
        help=f"cores reserved for the executor on each agent ({EXECUTOR_MIN_CPUS:g}, Mesos's "
             "minimum, or more; 0 reserves none, and Mesos warns at every launch)")
    mesos_agent_loss_timeout: float = opt(
        "mesosAgentLossTimeout", parse=parse_seconds, default=60.0, metavar="SECONDS",
        help="an executor cut off from its agent this long kills its jobs and exits (the "
             "agent's own recovery timeout is 15 minutes); keep it below Mesos's "
             "agent_ping_timeout x max_agent_ping_timeouts (75 s by default), after which "
             "the jobs are reported lost")
    mesos_max_log_size: int = opt(
        "mesosMaxLogSize", parse=parse_size, default=10 * 1024**2, metavar="SIZE",
        help="each job's output comes back to --logDir from its agent, its last SIZE "
             "bytes at most (the tail is kept); 0 leaves the logs in the agents' sandboxes")
    mesos_node_report_interval: float = opt(
        "mesosNodeReportInterval", parse=parse_seconds, default=30.0, metavar="SECONDS",
        help="how often each executor reports its node's load")
    enforce_memory: bool = enforce_memory_option()

    def uses_bundle(self) -> bool:
        if self.executor_deploy == "auto":
            return self.executor_command is None
        return self.executor_deploy == "bundle"

    def validate(self) -> None:
        if self.mesos_principal and not self.mesos_secret_file:
            raise OptionError("--mesosPrincipal needs --mesosSecretFile")
        if self.mesos_secret_file:
            if not self.mesos_principal:
                raise OptionError("--mesosSecretFile needs --mesosPrincipal")
            read_secret(self.mesos_secret_file, "mesosSecretFile")
        if self.zk_credentials_file:
            read_secret(self.zk_credentials_file, "zkCredentialsFile")
        if self.mesos_node_report_interval <= 0:
            raise OptionError("invalid value for --mesosNodeReportInterval: expected seconds "
                              "> 0")
        if self.executor_bundle and not self.uses_bundle():
            raise OptionError("--executorBundle needs --executorDeploy bundle (or no "
                              "--executorCommand)")
        if self.executor_bundle and not os.path.isfile(self.executor_bundle):
            raise OptionError(f"--executorBundle {self.executor_bundle}: no such file (make "
                              "one with 'mesobatch deploy bundle')")
