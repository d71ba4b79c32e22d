"""ACCEPT: offer validation, task validation in Mesos' order, launch, implicit decline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .master_state import AgentRecord, FrameworkRecord, OfferRecord
from .resources import Resources, with_allocation
from .statuses import make_status, update_event
from .wire import JsonDict, dumps

if TYPE_CHECKING:
    from .master import Master

NAME_MAX = 255
# src/master/constants.hpp: the least an executor should ask for.
MIN_EXECUTOR_CPUS = 0.01
MIN_EXECUTOR_MEM_MB = 32.0
MEGABYTE = 1024 * 1024


def validate_id(value: str) -> str | None:
    """common::validation::validateID."""
    if not value:
        return "ID must not be empty"
    if len(value) > NAME_MAX:
        return f"ID must not be greater than {NAME_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in value):
        return f"'{value}' contains invalid characters"
    return None


class LaunchContext:
    """One ACCEPT call: validates offers, launches what is valid, declines the rest."""

    def __init__(self, master: Master, framework: FrameworkRecord, accept: JsonDict) -> None:
        self.master = master
        self.framework = framework
        self.accept = accept
        self.offer_ids = [o["value"] for o in accept.get("offer_ids", [])]
        self.operations: list[JsonDict] = accept.get("operations", [])

    def run(self) -> None:
        error, offers = self._validate_offers()
        if error is not None:
            self._invalid_offers(error, offers)
            return
        master = self.master
        agent = master.agents[offers[0].agent_id]
        remaining = Resources()
        for offer in offers:
            master._remove_offer(offer, rescind=False)
            remaining = remaining + offer.resources
        master.counters.offers_accepted += len(offers)
        new_executors: set[str] = set()
        for operation in self.operations:
            kind = operation.get("type")
            if kind == "LAUNCH":
                for task in operation.get("launch", {}).get("task_infos", []):
                    remaining = self._launch_task(agent, task, remaining, new_executors)
            elif kind == "LAUNCH_GROUP":
                remaining = self._launch_group(agent, operation, remaining, new_executors)
        if not remaining.empty():
            master.add_filter(self.framework, agent.id, remaining, self.accept.get("filters"))

    # -- offers -------------------------------------------------------------------------------
    def _validate_offers(self) -> tuple[str | None, list[OfferRecord]]:
        offers: list[OfferRecord] = []
        if not self.offer_ids:
            return "No offers specified", offers
        error = None
        seen: set[str] = set()
        for offer_id in self.offer_ids:
            offer = self.master.offers.get(offer_id)
            if offer is None or offer.framework_id != self.framework.id:
                error = error or f"Offer {offer_id} is no longer valid"
                continue
            if offer_id in seen:
                error = error or f"Duplicate offer {offer_id} in accept"
                continue
            seen.add(offer_id)
            offers.append(offer)
        if error is None:
            first = offers[0]
            for offer in offers[1:]:
                if offer.agent_id != first.agent_id:
                    error = (
                        "Aggregated offers must belong to one single agent. Offer "
                        f"{offer.id} uses agent {offer.agent_id} and offer {first.id} uses "
                        f"agent {first.agent_id}"
                    )
                    break
        return error, offers

    def _invalid_offers(self, error: str, offers: list[OfferRecord]) -> None:
        for offer in offers:
            self.master._remove_offer(offer, rescind=False)
        state = "TASK_DROPPED" if self.framework.partition_aware else "TASK_LOST"
        for task in self._all_tasks():
            self._send_error(
                task, state, f"Task launched with invalid offers: {error}", "REASON_INVALID_OFFERS"
            )

    def _all_tasks(self) -> list[JsonDict]:
        tasks: list[JsonDict] = []
        for operation in self.operations:
            if operation.get("type") == "LAUNCH":
                tasks.extend(operation.get("launch", {}).get("task_infos", []))
            elif operation.get("type") == "LAUNCH_GROUP":
                tasks.extend(
                    operation.get("launch_group", {}).get("task_group", {}).get("tasks", [])
                )
        return tasks

    def _send_error(self, task: JsonDict, state: str, message: str, reason: str) -> None:
        status = make_status(
            task["task_id"]["value"],
            state,
            "SOURCE_MASTER",
            message=message,
            reason=reason,
            agent_id=task["agent_id"]["value"],
        )
        self.framework.send(update_event(status))

    # -- LAUNCH -------------------------------------------------------------------------------
    def _prepare(self, task: JsonDict) -> JsonDict:
        """What the master adds before validating: allocation info, executor framework id."""
        task = dict(task)
        task["resources"] = with_allocation(task.get("resources", []))
        executor = task.get("executor")
        if executor is not None:
            task["executor"] = self._prepare_executor(executor)
        return task

    def _prepare_executor(self, executor: JsonDict) -> JsonDict:
        executor = dict(executor)
        if "framework_id" not in executor:
            out: JsonDict = {}
            for key, value in executor.items():
                out[key] = value
                if key == "executor_id":
                    out["framework_id"] = {"value": self.framework.id}
            executor = out
        executor["resources"] = with_allocation(executor.get("resources", []))
        return executor

    def _launch_task(
        self, agent: AgentRecord, task: JsonDict, remaining: Resources, new_executors: set[str]
    ) -> Resources:
        task = self._prepare(task)
        error, total, executor_new = self._validate_task(agent, task, remaining, new_executors)
        if error is not None:
            self._send_error(task, "TASK_ERROR", error, "REASON_TASK_INVALID")
            return remaining
        master = self.master
        executor = task.get("executor")
        if executor is not None and executor_new:
            master.add_executor(self.framework, agent, executor)
            new_executors.add(executor["executor_id"]["value"])
        resources = Resources.from_json(task.get("resources", []))
        master.add_task(self.framework, agent, task, resources)
        self.framework.traffic.tasks_launched += 1
        agent.send(
            {
                "type": "RUN_TASK",
                "framework_info": self.framework.info,
                "task": task,
                "launch_executor": executor_new,
            }
        )
        return remaining - total

    def _validate_task(
        self, agent: AgentRecord, task: JsonDict, offered: Resources, new_executors: set[str]
    ) -> tuple[str | None, Resources, bool]:
        framework = self.framework
        task_id = task["task_id"]["value"]
        none = Resources()
        error = validate_id(task_id)
        if error is not None:
            return error, none, False
        if task_id in framework.tasks:
            return f"Task has duplicate ID: {task_id}", none, False
        if task_id in framework.unreachable_tasks:
            return f"Task reuses the ID of an unreachable task: {task_id}", none, False
        if task["agent_id"]["value"] != agent.id:
            return (
                f"Task uses invalid agent {task['agent_id']['value']} while agent "
                f"{agent.id} is expected",
                none,
                False,
            )
        grace = task.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds", 0)
        if grace < 0:
            return "Task's 'kill_policy.grace_period' must be non-negative", none, False
        if not task.get("resources"):
            return "Task uses no resources", none, False
        has_executor = "executor" in task
        if has_executor == ("command" in task):
            return (
                "Task should have at least one (but not both) of CommandInfo or "
                "ExecutorInfo present",
                none,
                False,
            )
        total = Resources.from_json(task["resources"])
        executor_new = False
        if has_executor:
            executor = task["executor"]
            error = self._validate_executor(agent, executor)
            if error is None:
                error = self._check_executor_minimums(executor, task_id)
            if error is not None:
                return error, none, False
            executor_id = executor["executor_id"]["value"]
            known = agent.executors.get(framework.id, {})
            if executor_id not in known and executor_id not in new_executors:
                executor_new = True
                total = total + Resources.from_json(executor.get("resources", []))
        if not offered.contains(total):
            return (
                f"Total resources {total.format()} required by task and its executor is more "
                f"than available {offered.format(offer_order=True)}",
                none,
                False,
            )
        return None, total, executor_new

    def _validate_executor(self, agent: AgentRecord, executor: JsonDict) -> str | None:
        kind = executor.get("type")
        if kind == "DEFAULT" and "command" in executor:
            return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
        if kind == "CUSTOM" and "command" not in executor:
            return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
        error = validate_id(executor["executor_id"]["value"])
        if error is not None:
            return error
        grace = executor.get("shutdown_grace_period", {}).get("nanoseconds", 0)
        if grace < 0:
            return "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
        framework_id = executor.get("framework_id", {}).get("value")
        if framework_id != self.framework.id:
            return (
                f"ExecutorInfo has an invalid FrameworkID (Actual: {framework_id} vs "
                f"Expected: {self.framework.id})"
            )
        existing = agent.executors.get(self.framework.id, {}).get(executor["executor_id"]["value"])
        if existing is not None and dumps(existing.info) != dumps(executor):
            return (
                "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n"
                "------------------------------------------------------------\n"
                f"Existing ExecutorInfo:\n{dumps(existing.info).decode()}\n"
                "------------------------------------------------------------\n"
                f"ExecutorInfo:\n{dumps(executor).decode()}\n"
                "------------------------------------------------------------\n"
            )
        if kind is not None and kind != "CUSTOM":
            return "'ExecutorInfo.type' must be 'CUSTOM'"
        if "command" not in executor:
            return "'ExecutorInfo.command' must be set"
        return None

    def _check_executor_minimums(self, executor: JsonDict, task_id: str) -> str | None:
        """validation.cpp task::internal::validateExecutor: executors under 0.01 cpus or 32 MB
        are logged (every LAUNCH, new executor or not) and counted; refused only when the
        double is told to (``refuse_small_executors``), as future releases were to."""
        master = self.master
        executor_id = executor["executor_id"]["value"]
        cpus, mem = executor_minimum_shortfalls(executor)
        refuse = master.config.refuse_small_executors
        for shortfall, what, minimum in (
            (cpus, "CPUs", f"{MIN_EXECUTOR_CPUS:g}"),
            (mem, "memory", format_bytes(MIN_EXECUTOR_MEM_MB)),
        ):
            if shortfall is None:
                continue
            if refuse:
                return (
                    f"Executor '{executor_id}' uses less {what} ({shortfall}) than the minimum "
                    f"required ({minimum})"
                )
            master.warn(
                f"Executor '{executor_id}' for task '{task_id}' uses less {what} ({shortfall}) "
                f"than the minimum required ({minimum}). Please update your executor, as this "
                "will be mandatory in future releases."
            )
            if what == "CPUs":
                master.counters.executor_cpus_warnings += 1
            else:
                master.counters.executor_mem_warnings += 1
        return None

    # -- LAUNCH_GROUP ---------------------------------------------------------------------------
    def _launch_group(
        self,
        agent: AgentRecord,
        operation: JsonDict,
        remaining: Resources,
        new_executors: set[str],
    ) -> Resources:
        group = operation.get("launch_group", {})
        executor = self._prepare_executor(group["executor"])
        tasks = [self._prepare(t) for t in group.get("task_group", {}).get("tasks", [])]
        for task in tasks:
            task["executor"] = executor
        error = self._validate_group(agent, executor, tasks, remaining, new_executors)
        if error is not None:
            for task in tasks:
                self._send_error(task, "TASK_ERROR", error, "REASON_TASK_GROUP_INVALID")
            return remaining
        master = self.master
        executor_id = executor["executor_id"]["value"]
        known = agent.executors.get(self.framework.id, {})
        launch_executor = executor_id not in known and executor_id not in new_executors
        total = Resources()
        if launch_executor:
            master.add_executor(self.framework, agent, executor)
            new_executors.add(executor_id)
            total = total + Resources.from_json(executor.get("resources", []))
        plain_tasks = []
        for task in tasks:
            resources = Resources.from_json(task.get("resources", []))
            total = total + resources
            master.add_task(self.framework, agent, task, resources)
            self.framework.traffic.tasks_launched += 1
            plain_tasks.append({k: v for k, v in task.items() if k != "executor"})
        agent.send(
            {
                "type": "RUN_TASK_GROUP",
                "framework_info": self.framework.info,
                "executor": executor,
                "task_group": {"tasks": plain_tasks},
                "launch_executor": launch_executor,
            }
        )
        return remaining - total

    def _validate_group(
        self,
        agent: AgentRecord,
        executor: JsonDict,
        tasks: list[JsonDict],
        offered: Resources,
        new_executors: set[str],
    ) -> str | None:
        if not tasks:
            return "Task group cannot be empty"
        kind = executor.get("type")
        if kind is None:
            return "'ExecutorInfo.type' must be set"
        if kind == "DEFAULT" and "command" in executor:
            return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
        if kind == "CUSTOM" and "command" not in executor:
            return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
        ids = [t["task_id"]["value"] for t in tasks]
        if len(set(ids)) != len(ids):
            return "The task group has duplicate task IDs"
        total = Resources()
        for task in tasks:
            task_id = task["task_id"]["value"]
            error = validate_id(task_id)
            if error is None and task_id in self.framework.tasks:
                error = f"Task has duplicate ID: {task_id}"
            if error is None and task["agent_id"]["value"] != agent.id:
                error = (
                    f"Task uses invalid agent {task['agent_id']['value']} while agent "
                    f"{agent.id} is expected"
                )
            if error is None and not task.get("resources"):
                error = "Task uses no resources"
            if error is not None:
                return f"Task '{task_id}' is invalid: {error}"
            total = total + Resources.from_json(task["resources"])
        executor_id = executor["executor_id"]["value"]
        # group::internal::validateExecutor: for task groups the minimums are errors in 1.11.
        cpus, mem = executor_minimum_shortfalls(executor)
        if cpus is not None:
            return (
                f"Executor '{executor_id}' uses less CPUs ({cpus}) than the minimum required "
                f"({MIN_EXECUTOR_CPUS:g})"
            )
        if mem is not None:
            return (
                f"Executor '{executor_id}' uses less memory ({mem}) than the minimum required "
                f"({format_bytes(MIN_EXECUTOR_MEM_MB)})"
            )
        if "disk" not in Resources.from_json(executor.get("resources", [])).items:
            return f"Executor '{executor_id}' uses no disk"
        if executor_id not in agent.executors.get(self.framework.id, {}) and (
            executor_id not in new_executors
        ):
            total = total + Resources.from_json(executor.get("resources", []))
        if not offered.contains(total):
            return (
                f"Total resources {total.format()} required by task group and its executor are "
                f"more than available {offered.format(offer_order=True)}"
            )
        return None


def executor_minimum_shortfalls(executor: JsonDict) -> tuple[str | None, str | None]:
    """How an executor's cpus and mem read in Mesos' messages when under the minimums
    (``None`` for an absent resource, as ``Resources::cpus()`` gives), else None."""
    resources = Resources.from_json(executor.get("resources", []))
    cpus = resources.items.get("cpus")
    mem = resources.items.get("mem")
    cpus_short = None
    if not isinstance(cpus, int) or cpus == 0:
        cpus_short = "None"
    elif cpus / 1000 < MIN_EXECUTOR_CPUS:
        cpus_short = f"{cpus / 1000:g}"
    mem_short = None
    if not isinstance(mem, int) or mem == 0:
        mem_short = "None"
    elif mem / 1000 < MIN_EXECUTOR_MEM_MB:
        mem_short = format_bytes(mem / 1000)
    return cpus_short, mem_short


def format_bytes(megabytes: float) -> str:
    """stout's ``Bytes`` output: the largest unit that loses nothing (``32MB``, ``1536KB``)."""
    size = int(megabytes * MEGABYTE)
    if size == 0:
        return "0B"
    for unit, scale in (("TB", 1024**4), ("GB", 1024**3), ("MB", MEGABYTE), ("KB", 1024)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"
