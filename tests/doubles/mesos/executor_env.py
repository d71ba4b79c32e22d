"""The environment a real agent builds for a custom executor (not inherited from the agent)."""

from __future__ import annotations

from .wire import JsonDict, format_duration

HOST_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def executor_environment(
    *,
    agent_id: str,
    agent_ip: str,
    agent_port: int,
    framework_id: str,
    executor_id: str,
    directory: str,
    checkpoint: bool,
    shutdown_grace_period: float,
    recovery_timeout: float,
    subscription_backoff_max: float,
    agent_variables: dict[str, str],
    command: JsonDict,
) -> dict[str, str]:
    env: dict[str, str] = {
        "LIBPROCESS_IP": agent_ip,
        "LIBPROCESS_PORT": "0",
        "MESOS_AGENT_ENDPOINT": f"{agent_ip}:{agent_port}",
        "MESOS_CHECKPOINT": "1" if checkpoint else "0",
        "MESOS_DIRECTORY": directory,
        "MESOS_EXECUTOR_ID": executor_id,
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(shutdown_grace_period),
        "MESOS_FRAMEWORK_ID": framework_id,
        "MESOS_HTTP_COMMAND_EXECUTOR": "0",
        "MESOS_SANDBOX": directory,
        "MESOS_SLAVE_ID": agent_id,
        "MESOS_SLAVE_PID": f"slave(1)@{agent_ip}:{agent_port}",
    }
    if checkpoint:
        env["MESOS_RECOVERY_TIMEOUT"] = format_duration(recovery_timeout)
        env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = format_duration(subscription_backoff_max)
    env.update(agent_variables)
    for variable in command.get("environment", {}).get("variables", []):
        if variable.get("type", "VALUE") == "VALUE":
            env[variable["name"]] = variable.get("value", "")
    env.setdefault("PATH", HOST_DEFAULT_PATH)
    return env
