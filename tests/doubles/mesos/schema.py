"""Field tables of the Mesos v1 protobuf messages the double parses (declaration order).

Each field is ``(name, type, flags[, default])``. Types: ``s`` string, ``b`` bytes (base64 in
JSON), ``d`` double, ``i`` signed integer, ``u`` unsigned integer, ``?`` bool, ``e:Enum``,
``m:Message``, ``any`` (an object passed through without checks). Flags: ``r`` required,
``*`` repeated, ``""`` optional. A default is listed only when Mesos renders it for unset
fields (optional, non-deprecated defaults such as ``shell: true``).
"""

from __future__ import annotations

from typing import Any

Field = tuple[Any, ...]

_ID = (("value", "s", "r"),)

MESSAGES: dict[str, tuple[Field, ...]] = {
    "FrameworkID": _ID,
    "OfferID": _ID,
    "AgentID": _ID,
    "TaskID": _ID,
    "ExecutorID": _ID,
    "OperationID": _ID,
    "ResourceProviderID": _ID,
    "ContainerID": (("value", "s", "r"), ("parent", "m:ContainerID", "")),
    "DurationInfo": (("nanoseconds", "i", "r"),),
    "TimeInfo": (("nanoseconds", "i", "r"),),
    "Duration": (("seconds", "i", ""), ("nanos", "i", "")),
    "Label": (("key", "s", "r"), ("value", "s", "")),
    "Labels": (("labels", "m:Label", "*"),),
    "FrameworkInfo.Capability": (("type", "e:FrameworkCapability", ""),),
    "FrameworkInfo": (
        ("user", "s", "r"),
        ("name", "s", "r"),
        ("id", "m:FrameworkID", ""),
        ("failover_timeout", "d", "", 0.0),
        ("checkpoint", "?", "", False),
        ("role", "s", ""),
        ("roles", "s", "*"),
        ("hostname", "s", ""),
        ("principal", "s", ""),
        ("webui_url", "s", ""),
        ("capabilities", "m:FrameworkInfo.Capability", "*"),
        ("labels", "m:Labels", ""),
        ("offer_filters", "any", ""),
    ),
    "Filters": (("refuse_seconds", "d", "", 5.0),),
    "KillPolicy": (("grace_period", "m:DurationInfo", ""),),
    "CommandInfo.URI": (
        ("value", "s", "r"),
        ("executable", "?", ""),
        ("extract", "?", "", True),
        ("cache", "?", ""),
        ("output_file", "s", ""),
    ),
    "Environment.Variable": (
        ("name", "s", "r"),
        ("type", "e:VariableType", "", "VALUE"),
        ("value", "s", ""),
        ("secret", "any", ""),
    ),
    "Environment": (("variables", "m:Environment.Variable", "*"),),
    "CommandInfo": (
        ("uris", "m:CommandInfo.URI", "*"),
        ("environment", "m:Environment", ""),
        ("shell", "?", "", True),
        ("value", "s", ""),
        ("arguments", "s", "*"),
        ("user", "s", ""),
    ),
    "ExecutorInfo": (
        ("type", "e:ExecutorType", ""),
        ("executor_id", "m:ExecutorID", "r"),
        ("framework_id", "m:FrameworkID", ""),
        ("command", "m:CommandInfo", ""),
        ("container", "any", ""),
        ("resources", "m:Resource", "*"),
        ("name", "s", ""),
        ("source", "s", ""),
        ("data", "b", ""),
        ("discovery", "any", ""),
        ("shutdown_grace_period", "m:DurationInfo", ""),
        ("labels", "m:Labels", ""),
    ),
    "TaskInfo": (
        ("name", "s", "r"),
        ("task_id", "m:TaskID", "r"),
        ("agent_id", "m:AgentID", "r"),
        ("resources", "m:Resource", "*"),
        ("executor", "m:ExecutorInfo", ""),
        ("command", "m:CommandInfo", ""),
        ("container", "any", ""),
        ("health_check", "any", ""),
        ("check", "any", ""),
        ("kill_policy", "m:KillPolicy", ""),
        ("data", "b", ""),
        ("labels", "m:Labels", ""),
        ("discovery", "any", ""),
        ("max_completion_time", "m:DurationInfo", ""),
        ("limits", "any", ""),
    ),
    "TaskGroupInfo": (("tasks", "m:TaskInfo", "*"),),
    "Value.Scalar": (("value", "d", "r"),),
    "Value.Range": (("begin", "u", "r"), ("end", "u", "r")),
    "Value.Ranges": (("range", "m:Value.Range", "*"),),
    "Value.Set": (("item", "s", "*"),),
    "Value.Text": (("value", "s", "r"),),
    "Resource.AllocationInfo": (("role", "s", ""),),
    "Resource.ReservationInfo": (
        ("type", "e:ReservationType", ""),
        ("role", "s", ""),
        ("principal", "s", ""),
        ("labels", "m:Labels", ""),
    ),
    "Resource": (
        ("provider_id", "m:ResourceProviderID", ""),
        ("name", "s", "r"),
        ("type", "e:ValueType", "r"),
        ("scalar", "m:Value.Scalar", ""),
        ("ranges", "m:Value.Ranges", ""),
        ("set", "m:Value.Set", ""),
        ("role", "s", ""),
        ("allocation_info", "m:Resource.AllocationInfo", ""),
        ("reservation", "m:Resource.ReservationInfo", ""),
        ("reservations", "m:Resource.ReservationInfo", "*"),
        ("disk", "any", ""),
        ("revocable", "any", ""),
        ("shared", "any", ""),
    ),
    "ContainerStatus": (
        ("container_id", "m:ContainerID", ""),
        ("network_infos", "any", "*"),
        ("cgroup_info", "any", ""),
        ("executor_pid", "u", ""),
    ),
    "TaskStatus": (
        ("task_id", "m:TaskID", "r"),
        ("state", "e:TaskState", "r"),
        ("message", "s", ""),
        ("source", "e:TaskSource", ""),
        ("reason", "e:TaskReason", ""),
        ("data", "b", ""),
        ("agent_id", "m:AgentID", ""),
        ("executor_id", "m:ExecutorID", ""),
        ("timestamp", "d", ""),
        ("uuid", "b", ""),
        ("healthy", "?", ""),
        ("check_status", "any", ""),
        ("labels", "m:Labels", ""),
        ("container_status", "m:ContainerStatus", ""),
        ("unreachable_time", "m:TimeInfo", ""),
        ("limitation", "any", ""),
    ),
    "Offer.Operation.Launch": (("task_infos", "m:TaskInfo", "*"),),
    "Offer.Operation.LaunchGroup": (
        ("executor", "m:ExecutorInfo", "r"),
        ("task_group", "m:TaskGroupInfo", "r"),
    ),
    "Offer.Operation": (
        ("type", "e:OperationType", ""),
        ("id", "m:OperationID", ""),
        ("launch", "m:Offer.Operation.Launch", ""),
        ("launch_group", "m:Offer.Operation.LaunchGroup", ""),
        ("reserve", "any", ""),
        ("unreserve", "any", ""),
        ("create", "any", ""),
        ("destroy", "any", ""),
        ("grow_volume", "any", ""),
        ("shrink_volume", "any", ""),
        ("create_disk", "any", ""),
        ("destroy_disk", "any", ""),
    ),
    # scheduler::Call
    "Call.Subscribe": (
        ("framework_info", "m:FrameworkInfo", "r"),
        ("suppressed_roles", "s", "*"),
        ("offer_constraints", "any", ""),
    ),
    "Call.Accept": (
        ("offer_ids", "m:OfferID", "*"),
        ("operations", "m:Offer.Operation", "*"),
        ("filters", "m:Filters", ""),
    ),
    "Call.Decline": (("offer_ids", "m:OfferID", "*"), ("filters", "m:Filters", "")),
    "Call.InverseOffers": (
        ("inverse_offer_ids", "m:OfferID", "*"),
        ("filters", "m:Filters", ""),
    ),
    "Call.Roles": (("roles", "s", "*"),),
    "Call.Kill": (
        ("task_id", "m:TaskID", "r"),
        ("agent_id", "m:AgentID", ""),
        ("kill_policy", "m:KillPolicy", ""),
    ),
    "Call.Shutdown": (("executor_id", "m:ExecutorID", "r"), ("agent_id", "m:AgentID", "r")),
    "Call.Acknowledge": (
        ("agent_id", "m:AgentID", "r"),
        ("task_id", "m:TaskID", "r"),
        ("uuid", "b", "r"),
    ),
    "Call.AcknowledgeOperationStatus": (
        ("agent_id", "m:AgentID", ""),
        ("resource_provider_id", "m:ResourceProviderID", ""),
        ("uuid", "b", "r"),
        ("operation_id", "m:OperationID", "r"),
    ),
    "Call.Reconcile.Task": (("task_id", "m:TaskID", "r"), ("agent_id", "m:AgentID", "")),
    "Call.Reconcile": (("tasks", "m:Call.Reconcile.Task", "*"),),
    "Call.ReconcileOperations": (("operations", "any", "*"),),
    "Call.Message": (
        ("agent_id", "m:AgentID", "r"),
        ("executor_id", "m:ExecutorID", "r"),
        ("data", "b", "r"),
    ),
    "Call.Request": (("requests", "any", "*"),),
    "Call": (
        ("framework_id", "m:FrameworkID", ""),
        ("type", "e:CallType", ""),
        ("subscribe", "m:Call.Subscribe", ""),
        ("accept", "m:Call.Accept", ""),
        ("decline", "m:Call.Decline", ""),
        ("accept_inverse_offers", "m:Call.InverseOffers", ""),
        ("decline_inverse_offers", "m:Call.InverseOffers", ""),
        ("revive", "m:Call.Roles", ""),
        ("kill", "m:Call.Kill", ""),
        ("shutdown", "m:Call.Shutdown", ""),
        ("acknowledge", "m:Call.Acknowledge", ""),
        ("acknowledge_operation_status", "m:Call.AcknowledgeOperationStatus", ""),
        ("reconcile", "m:Call.Reconcile", ""),
        ("reconcile_operations", "m:Call.ReconcileOperations", ""),
        ("message", "m:Call.Message", ""),
        ("request", "m:Call.Request", ""),
        ("suppress", "m:Call.Roles", ""),
        ("update_framework", "m:Call.Subscribe", ""),
    ),
    # executor::Call
    "ExecutorCall.Subscribe": (
        ("unacknowledged_tasks", "m:TaskInfo", "*"),
        ("unacknowledged_updates", "m:ExecutorCall.Update", "*"),
    ),
    "ExecutorCall.Update": (("status", "m:TaskStatus", "r"),),
    "ExecutorCall.Message": (("data", "b", "r"),),
    "ExecutorCall": (
        ("executor_id", "m:ExecutorID", "r"),
        ("framework_id", "m:FrameworkID", "r"),
        ("type", "e:ExecutorCallType", ""),
        ("subscribe", "m:ExecutorCall.Subscribe", ""),
        ("update", "m:ExecutorCall.Update", ""),
        ("message", "m:ExecutorCall.Message", ""),
    ),
    # master::Call (operator API); only the calls the double implements are typed.
    "MachineID": (("hostname", "s", ""), ("ip", "s", "")),
    "Unavailability": (("start", "m:TimeInfo", "r"), ("duration", "m:DurationInfo", "")),
    "Maintenance.Window": (
        ("machine_ids", "m:MachineID", "*"),
        ("unavailability", "m:Unavailability", "r"),
    ),
    "Maintenance.Schedule": (("windows", "m:Maintenance.Window", "*"),),
    "OperatorCall.AgentId": (("agent_id", "m:AgentID", "r"),),
    "OperatorCall.DrainAgent": (
        ("agent_id", "m:AgentID", "r"),
        ("max_grace_period", "m:Duration", ""),
        ("mark_gone", "?", "", False),
    ),
    "OperatorCall.UpdateMaintenanceSchedule": (("schedule", "m:Maintenance.Schedule", "r"),),
    "OperatorCall.Machines": (("machines", "m:MachineID", "*"),),
    "OperatorCall": (
        ("type", "e:OperatorCallType", ""),
        ("get_metrics", "any", ""),
        ("set_logging_level", "any", ""),
        ("list_files", "any", ""),
        ("read_file", "any", ""),
        ("update_weights", "any", ""),
        ("reserve_resources", "any", ""),
        ("unreserve_resources", "any", ""),
        ("create_volumes", "any", ""),
        ("destroy_volumes", "any", ""),
        ("grow_volume", "any", ""),
        ("shrink_volume", "any", ""),
        ("update_maintenance_schedule", "m:OperatorCall.UpdateMaintenanceSchedule", ""),
        ("start_maintenance", "m:OperatorCall.Machines", ""),
        ("stop_maintenance", "m:OperatorCall.Machines", ""),
        ("drain_agent", "m:OperatorCall.DrainAgent", ""),
        ("deactivate_agent", "m:OperatorCall.AgentId", ""),
        ("reactivate_agent", "m:OperatorCall.AgentId", ""),
        ("update_quota", "any", ""),
        ("teardown", "any", ""),
        ("mark_agent_gone", "any", ""),
    ),
}

_TASK_STATES = (
    "TASK_STAGING TASK_STARTING TASK_RUNNING TASK_KILLING TASK_FINISHED TASK_FAILED "
    "TASK_KILLED TASK_ERROR TASK_LOST TASK_DROPPED TASK_UNREACHABLE TASK_GONE "
    "TASK_GONE_BY_OPERATOR TASK_UNKNOWN"
)
_REASONS = (
    "REASON_COMMAND_EXECUTOR_FAILED REASON_CONTAINER_LAUNCH_FAILED REASON_CONTAINER_LIMITATION "
    "REASON_CONTAINER_LIMITATION_DISK REASON_CONTAINER_LIMITATION_MEMORY "
    "REASON_CONTAINER_PREEMPTED REASON_CONTAINER_UPDATE_FAILED "
    "REASON_MAX_COMPLETION_TIME_REACHED REASON_EXECUTOR_REGISTRATION_TIMEOUT "
    "REASON_EXECUTOR_REREGISTRATION_TIMEOUT REASON_EXECUTOR_TERMINATED "
    "REASON_EXECUTOR_UNREGISTERED REASON_FRAMEWORK_REMOVED REASON_GC_ERROR "
    "REASON_INVALID_FRAMEWORKID REASON_INVALID_OFFERS REASON_IO_SWITCHBOARD_EXITED "
    "REASON_MASTER_DISCONNECTED REASON_RECONCILIATION REASON_RESOURCES_UNKNOWN "
    "REASON_AGENT_DISCONNECTED REASON_AGENT_DRAINING REASON_AGENT_REMOVED "
    "REASON_AGENT_REMOVED_BY_OPERATOR REASON_AGENT_REREGISTERED REASON_AGENT_RESTARTED "
    "REASON_AGENT_UNKNOWN REASON_TASK_KILLED_DURING_LAUNCH REASON_TASK_CHECK_STATUS_UPDATED "
    "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED REASON_TASK_GROUP_INVALID "
    "REASON_TASK_GROUP_UNAUTHORIZED REASON_TASK_INVALID REASON_TASK_UNAUTHORIZED "
    "REASON_TASK_UNKNOWN"
)

ENUMS: dict[str, frozenset[str]] = {
    "FrameworkCapability": frozenset(
        [
            "UNKNOWN",
            "REVOCABLE_RESOURCES",
            "TASK_KILLING_STATE",
            "GPU_RESOURCES",
            "SHARED_RESOURCES",
            "PARTITION_AWARE",
            "MULTI_ROLE",
            "RESERVATION_REFINEMENT",
            "REGION_AWARE",
        ]
    ),
    "VariableType": frozenset({"UNKNOWN", "VALUE", "SECRET"}),
    "ExecutorType": frozenset({"UNKNOWN", "DEFAULT", "CUSTOM"}),
    "ReservationType": frozenset({"UNKNOWN", "STATIC", "DYNAMIC"}),
    "ValueType": frozenset({"SCALAR", "RANGES", "SET", "TEXT"}),
    "TaskState": frozenset(_TASK_STATES.split()),
    "TaskSource": frozenset({"SOURCE_MASTER", "SOURCE_AGENT", "SOURCE_EXECUTOR"}),
    "TaskReason": frozenset(_REASONS.split()),
    "OperationType": frozenset(
        [
            "UNKNOWN",
            "LAUNCH",
            "LAUNCH_GROUP",
            "RESERVE",
            "UNRESERVE",
            "CREATE",
            "DESTROY",
            "GROW_VOLUME",
            "SHRINK_VOLUME",
            "CREATE_DISK",
            "DESTROY_DISK",
        ]
    ),
    "CallType": frozenset(
        [
            "UNKNOWN",
            "SUBSCRIBE",
            "TEARDOWN",
            "ACCEPT",
            "DECLINE",
            "ACCEPT_INVERSE_OFFERS",
            "DECLINE_INVERSE_OFFERS",
            "REVIVE",
            "KILL",
            "SHUTDOWN",
            "ACKNOWLEDGE",
            "ACKNOWLEDGE_OPERATION_STATUS",
            "RECONCILE",
            "RECONCILE_OPERATIONS",
            "MESSAGE",
            "REQUEST",
            "SUPPRESS",
            "UPDATE_FRAMEWORK",
        ]
    ),
    "ExecutorCallType": frozenset({"UNKNOWN", "SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT"}),
    "OperatorCallType": frozenset(
        [
            "UNKNOWN",
            "GET_HEALTH",
            "GET_FLAGS",
            "GET_VERSION",
            "GET_METRICS",
            "GET_LOGGING_LEVEL",
            "SET_LOGGING_LEVEL",
            "LIST_FILES",
            "READ_FILE",
            "GET_STATE",
            "GET_AGENTS",
            "GET_FRAMEWORKS",
            "GET_EXECUTORS",
            "GET_OPERATIONS",
            "GET_TASKS",
            "GET_ROLES",
            "GET_WEIGHTS",
            "UPDATE_WEIGHTS",
            "GET_MASTER",
            "RESERVE_RESOURCES",
            "UNRESERVE_RESOURCES",
            "CREATE_VOLUMES",
            "DESTROY_VOLUMES",
            "GROW_VOLUME",
            "SHRINK_VOLUME",
            "GET_MAINTENANCE_STATUS",
            "GET_MAINTENANCE_SCHEDULE",
            "UPDATE_MAINTENANCE_SCHEDULE",
            "START_MAINTENANCE",
            "STOP_MAINTENANCE",
            "DRAIN_AGENT",
            "DEACTIVATE_AGENT",
            "REACTIVATE_AGENT",
            "GET_QUOTA",
            "UPDATE_QUOTA",
            "SET_QUOTA",
            "REMOVE_QUOTA",
            "TEARDOWN",
            "MARK_AGENT_GONE",
            "SUBSCRIBE",
        ]
    ),
}

TERMINAL_STATES = frozenset(
    [
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    ]
)
