"""The scheduler driver for ``POST /api/v1/scheduler``, with pymesos's driver methods.

One thread holds the SUBSCRIBE stream and turns its RecordIO events into Scheduler
callbacks; calls go out from two sender threads, each carrying the Mesos-Stream-Id of
the current subscription: one sends offers, kills, suppress/revive and reconciliation
in order, each answered before the next; the other acknowledgements and messages,
those waiting written at once (pipelined) and their answers read after. The stream is watched:
no event for five heartbeat intervals means it is dead. Any loss of the stream means a
new SUBSCRIBE with the saved framework id, after a short random delay and then with
exponential backoff, following 307 redirects to the leading master and retrying 503s.
Calls made while not subscribed are dropped: offers are void after a new
subscription, Mesos re-sends unacknowledged updates, and the core re-sends kills,
revives and reconciliation of its own accord.
"""

from __future__ import annotations

import enum
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ...common.outbox import Outbox
from ...common.transport import Answer, EventStream, Transport, TransportError
from ...executor.protocol import b64decode, b64encode
from ..backend import Post
from ..core.events import TaskStatus
from ..core.states import TaskState
from .event_checks import (
    clean_status,
    event_problem,
    failure_status,
    heartbeat_interval,
    is_id,
)
from .interface import Message, Scheduler, SchedulerDriver
from .master import MasterDetector

log = logging.getLogger(__name__)

API_PATH = "/api/v1/scheduler"


class DriverError(Exception):
    """Mesos refused the framework for good (bad credentials, removed framework, ...)."""


class MalformedEvent(Exception):
    """An event that makes the stream unusable (a SUBSCRIBED we cannot read)."""


class DriverState(enum.Enum):
    """Where the driver stands; the last three are final."""

    CREATED = "created"  #: not started yet
    NO_LEADER = "no-leader"  #: no leading master to subscribe to (yet)
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    DISCONNECTED = "disconnected"  #: between subscriptions; subscribing again soon
    STOPPED = "stopped"  #: stop() was called
    ABORTED = "aborted"  #: abort() was called
    FAILED = "failed"  #: Mesos refused this framework for good (see last_error)

    @property
    def final(self) -> bool:
        return self in (DriverState.STOPPED, DriverState.ABORTED, DriverState.FAILED)


def refused_for_content(status: int, text: str) -> bool:
    """Whether Mesos refused a call for what it holds (400 "Failed to parse/convert/
    validate ..."), so that the same call would be refused again; a stale stream id or
    an unknown framework (also 400) pass with a new subscription."""
    return status == 400 and text.startswith("Failed to")


def _ids(values: Any) -> list[Message]:
    """pymesos accepts one id or a list of ids; each an {"value": ...} dict or a string."""
    if isinstance(values, dict | str):
        values = [values]
    return [v if isinstance(v, dict) else {"value": str(v)} for v in values]


class MesosSchedulerDriver(SchedulerDriver):
    """Drives a Scheduler over the v1 scheduler HTTP API.

    ``post`` takes the core's events for launches that never reached Mesos
    (TaskStatus LOST, never started: the core queues their jobs again)."""

    #: consecutive heartbeats that may be missed before the stream counts as dead
    MISSED_HEARTBEATS = 5
    #: acknowledgements written at once at most (their answers fit any socket buffer)
    ACK_BATCH = 32
    #: seconds acknowledgements wait for more before they are written
    ACK_LINGER = 0.005

    def __init__(
        self,
        scheduler: Scheduler,
        framework: Message,
        master: MasterDetector,
        *,
        authorization: str | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        backoff_max: float = 15.0,
        post: Post | None = None,
    ) -> None:
        self.scheduler = scheduler
        self._post_events = post  # for launches that never reached Mesos
        self.framework = dict(framework)
        self.framework_id: str | None = (framework.get("id") or {}).get("value")
        self.detector = master
        self._http = Transport(authorization=authorization, ca_bundle=ca_bundle, verify=verify,
                               timeout=30.0)
        self._stream: EventStream | None = None
        self._stream_id: str | None = None
        self._base: str | None = None  # scheme://host:port of the master we talk to
        self._path = API_PATH
        self._redirect: str | None = None
        self._stopped = threading.Event()
        self._resubscribe = threading.Event()
        self._control: Outbox[Message] = Outbox()
        # Acknowledgements may go a few ms late (Mesos re-sends an update only after
        # 10 s), so they are gathered for a moment: fewer wake-ups, fuller writes.
        self._acks: Outbox[Message] = Outbox(linger=self.ACK_LINGER)
        self._last_event = time.monotonic()
        self._heartbeat = 15.0
        self._backoff_max = backoff_max
        self._subscribed_before = False
        self._closing = False
        self._state_lock = threading.Lock()  # a final state is never overwritten
        self.state = DriverState.CREATED
        self.last_error: str | None = None
        self.malformed_events = 0  #: events skipped because they could not be read
        self.last_malformed: str | None = None
        self._threads = [
            threading.Thread(target=self._subscribe_loop, name="mesos-stream", daemon=True),
            threading.Thread(target=self._send_loop, args=(self._control, 1),
                             name="mesos-calls", daemon=True),
            threading.Thread(target=self._watchdog, name="mesos-watchdog", daemon=True),
            threading.Thread(target=self._send_loop, args=(self._acks, self.ACK_BATCH),
                             name="mesos-acks", daemon=True),
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.detector.start(self._leader_changed)
        for t in self._threads:
            t.start()

    def run(self) -> DriverState:
        self.start()
        return self.join()

    def join(self) -> DriverState:
        self._stopped.wait()
        return self.state

    def stop(self, failover: bool = False) -> None:
        """Stop. Without ``failover`` the framework is torn down: Mesos kills its tasks."""
        if self._stopped.is_set():
            return
        self._closing = True  # the stream ending after TEARDOWN is not a reason to resubscribe
        if not failover and self._stream_id is not None:
            # In the ordered queue, after the kills already asked for; the stream stays
            # open until Mesos ends it (a closed stream would make the calls get 403).
            done = threading.Event()
            self._control.put({"type": "TEARDOWN", "_done": done})
            if not done.wait(10):
                log.warning("TEARDOWN not answered within 10 s")
        self._halt(DriverState.STOPPED)

    def abort(self) -> None:
        self._halt(DriverState.ABORTED)

    def _halt(self, state: DriverState) -> None:
        self._set_state(state)
        self._stopped.set()
        self._resubscribe.set()
        self._control.close()
        self._acks.close()
        stream = self._stream
        if stream is not None:
            stream.close()
        self.detector.stop()
        for t in self._threads:
            if t is not threading.current_thread() and t.ident is not None:
                t.join(timeout=5)
        self._http.close()

    # ------------------------------------------------------------------ calls
    def launchTasks(self, offerIds: Any, tasks: list[Message],
                    filters: Message | None = None) -> None:
        self.acceptOffers(offerIds, [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                          filters)

    def acceptOffers(self, offerIds: Any, operations: list[Message],
                     filters: Message | None = None) -> None:
        body: Message = {"offer_ids": _ids(offerIds), "operations": operations}
        if filters is not None:
            body["filters"] = filters
        self._call("ACCEPT", body)

    def declineOffer(self, offerIds: Any, filters: Message | None = None) -> None:
        body: Message = {"offer_ids": _ids(offerIds)}
        if filters is not None:
            body["filters"] = filters
        self._call("DECLINE", body)

    def acceptInverseOffers(self, offerIds: Any, filters: Message | None = None) -> None:
        self._call("ACCEPT_INVERSE_OFFERS", {"inverse_offer_ids": _ids(offerIds),
                                             **({"filters": filters} if filters else {})})

    def declineInverseOffer(self, offerIds: Any, filters: Message | None = None) -> None:
        self._call("DECLINE_INVERSE_OFFERS", {"inverse_offer_ids": _ids(offerIds),
                                              **({"filters": filters} if filters else {})})

    def reviveOffers(self, roles: Iterable[str] | None = None) -> None:
        self._call("REVIVE", {"roles": list(roles)} if roles else {})

    def suppressOffers(self, roles: Iterable[str] | None = None) -> None:
        self._call("SUPPRESS", {"roles": list(roles)} if roles else {})

    def killTask(self, taskId: Any, agentId: Any = None,
                 gracePeriod: float | None = None) -> None:
        body: Message = {"task_id": _ids(taskId)[0]}
        if agentId is not None:
            body["agent_id"] = _ids(agentId)[0]
        if gracePeriod is not None:
            body["kill_policy"] = {"grace_period": {"nanoseconds": int(gracePeriod * 1e9)}}
        self._call("KILL", body)

    def acknowledgeStatusUpdate(self, status: Message) -> None:
        if not status.get("uuid") or "agent_id" not in status:
            return  # master-generated updates carry no uuid and must not be acked
        if not (isinstance(status["uuid"], str) and is_id(status["agent_id"])
                and is_id(status.get("task_id"))):
            return  # nothing Mesos could match an acknowledgement to
        self._acks.put({"type": "ACKNOWLEDGE", "acknowledge": {
            "agent_id": status["agent_id"], "task_id": status["task_id"],
            "uuid": status["uuid"]}})

    def reconcileTasks(self, tasks: list[Message]) -> None:
        self._call("RECONCILE", {"tasks": tasks})

    def sendFrameworkMessage(self, executorId: Any, slaveId: Any, data: bytes) -> None:
        self._acks.put({"type": "MESSAGE", "message": {
            "agent_id": _ids(slaveId)[0], "executor_id": _ids(executorId)[0],
            "data": b64encode(data)}})

    def requestResources(self, requests: list[Message]) -> None:
        self._call("REQUEST", {"requests": requests})

    def _call(self, kind: str, body: Message) -> None:
        self._control.put({"type": kind, kind.lower(): body})

    # ------------------------------------------------------------------ sending
    def _url(self) -> str:
        return f"{self._base}{self._path}"

    def _send_loop(self, outbox: Outbox[Message], most: int) -> None:
        while (calls := outbox.take(most)) is not None:
            done = [d for call in calls if (d := call.pop("_done", None)) is not None]
            try:
                self._send(calls)
            except Exception as e:  # never the end of this thread
                log.exception("calls to the master not sent")
                for call in calls:
                    self._undelivered(call, f"not sent: {type(e).__name__}: {e}")
            finally:
                for d in done:
                    d.set()

    def _send(self, calls: list[Message]) -> None:
        stream_id = self._stream_id
        if stream_id is None or self._base is None:
            for call in calls:
                self._undelivered(call, "not subscribed")
            return
        if self.framework_id:
            framework_id = {"value": self.framework_id}
            for call in calls:
                call["framework_id"] = framework_id
        self._http.deliver(self._url(), calls, self._answered, self._lost,
                           {"Mesos-Stream-Id": stream_id})

    def _lost(self, call: Message, why: str) -> None:
        log.info("%s not delivered: %s", call["type"], why)
        self._undelivered(call, why)

    def _answered(self, call: Message, answer: Answer) -> None:
        if answer.status == 202:
            return
        if answer.status == 307:
            log.info("%s: master is no longer the leader; subscribing again", call["type"])
            self._undelivered(call, "master is not the leader")
            self._reconnect()
            return
        # after our own TEARDOWN, stragglers (acknowledgements) are refused: fine
        level = logging.DEBUG if self._closing else logging.WARNING
        # Mesos echoes the body from the error on (task payloads with their resource
        # token among it): its first words say enough
        text = answer.text if len(answer.text) <= 160 else answer.text[:160] + "..."
        log.log(level, "Mesos refused %s: HTTP %s %s", call["type"], answer.status, text)
        self._undelivered(call, f"HTTP {answer.status} {text}",
                          refused=refused_for_content(answer.status, answer.text))

    def _undelivered(self, call: Message, why: str, refused: bool = False) -> None:
        """A launch that never reached Mesos: its tasks never started, and the core
        requeues them. Other calls are repeated by the core or void after a new
        subscription.

        ``refused``: Mesos refused the call for its content, and would again. A launch
        of one task counts against that task; one of several tasks sends each alone
        from now on, so the bad one is found and the others run. Its offers, which
        Mesos never took, go back at once."""
        if call["type"] != "ACCEPT":
            return
        now = time.time()
        tasks = [task for op in call["accept"].get("operations", [])
                 for task in op.get("launch", {}).get("task_infos", [])]
        if refused:
            self._call("DECLINE", {"offer_ids": call["accept"].get("offer_ids", []),
                                   "filters": {"refuse_seconds": 0.0}})
        verb = "launch refused" if refused else "launch not delivered"
        events = [TaskStatus(task["task_id"]["value"], TaskState.LOST, now,
                             message=f"{verb}: {why}",
                             agent_id=(task.get("agent_id") or {}).get("value"),
                             never_started=True,
                             launch_refused=refused and len(tasks) == 1,
                             launch_alone=refused and len(tasks) > 1)
                  for task in tasks]
        if not events:
            return
        if self._post_events is None:
            log.warning("%d launched tasks never reached Mesos (%s)", len(events), why)
            return
        try:
            self._post_events(*events)
        except Exception:
            log.exception("could not hand on %d undelivered launches", len(events))

    # ------------------------------------------------------------------ subscription
    def _leader_changed(self) -> None:
        """The detector saw a new leader (or none): drop the stream and subscribe again."""
        self._redirect = None
        self._reconnect()

    def _reconnect(self) -> None:
        self._resubscribe.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _subscribe_body(self) -> Message:
        info = dict(self.framework)
        body: Message = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.framework_id:
            info["id"] = {"value": self.framework_id}
            body["framework_id"] = {"value": self.framework_id}
        return body

    def _set_state(self, state: DriverState, error: str | None = None) -> None:
        with self._state_lock:
            if self.state.final:
                return
            self.state = state
            if error is not None:
                self.last_error = error

    def _subscribe_loop(self) -> None:
        backoff = 0.5
        first = True
        while not self._stopped.is_set():
            self._resubscribe.clear()
            if not first:  # spread reconnects of many schedulers (as the C++ driver does)
                self._stopped.wait(random.uniform(0, 0.5))
            first = False
            base = self._redirect or self.detector.leader()
            if base is None:
                self._set_state(DriverState.NO_LEADER,
                                f"{self.detector.describe()}: no leading master")
                self._resubscribe.wait(0.5)
                continue
            self._base = base
            try:
                try:
                    outcome = self._subscribe_once()
                except TransportError as e:
                    if isinstance(e.__cause__, ssl.SSLCertVerificationError):
                        raise DriverError(
                            f"the TLS certificate of {base} is not trusted: "
                            f"{e.__cause__.verify_message} (give the CA with --mesosCaBundle)"
                        ) from None
                    outcome = f"cannot reach {base}: {e}"
                except DriverError:
                    raise
                except Exception as e:  # never the end of this thread: subscribe again
                    log.exception("subscription to %s failed", base)
                    outcome = f"subscription failed: {type(e).__name__}: {e}"
            except DriverError as e:
                self._set_state(DriverState.FAILED, str(e))
                self._safely(self.scheduler.error, str(e))
                self._halt(DriverState.FAILED)
                return
            if outcome == "redirect":
                first = True  # straight to the leader
                continue
            if self._stopped.is_set() or self._closing:
                return
            if outcome == "subscribed":
                backoff = 0.5  # the stream broke after working: start over quickly
            else:
                self._set_state(DriverState.DISCONNECTED, outcome)
                log.info("subscription failed (%s); retrying in %.1f s", outcome, backoff)
                self._resubscribe.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)

    def _subscribe_once(self) -> str:
        self._set_state(DriverState.SUBSCRIBING)
        stream = self._http.stream(self._url(), self._subscribe_body(),
                                   read_timeout=self._heartbeat * self.MISSED_HEARTBEATS)
        answer = stream.answer
        if answer is not None:
            return self._refused(answer)
        self._stream = stream
        self._stream_id = stream.headers.get("Mesos-Stream-Id")
        self._last_event = time.monotonic()
        subscribed = False
        try:
            for event in stream.events():
                self._last_event = time.monotonic()
                try:
                    subscribed = self._dispatch(event) or subscribed
                except (DriverError, MalformedEvent):
                    raise
                except Exception as e:  # a shape no check foresaw: never the thread's end
                    log.exception("event from the master not handled")
                    self._skipped(f"{type(e).__name__}: {e}", event)
                if self._stopped.is_set() or self._resubscribe.is_set():
                    break
            reason = "the master closed the stream"
        except TransportError as e:
            reason = f"stream broken: {e}"
        except MalformedEvent as e:
            reason = f"malformed event from the master: {e}"
        finally:
            self._stream = None
            self._stream_id = None
            stream.close()
        if subscribed and not self._stopped.is_set() and not self._closing:
            self._set_state(DriverState.DISCONNECTED, reason)
            self._safely(self.scheduler.disconnected)
        return "subscribed" if subscribed else reason

    def _refused(self, answer: Any) -> str:
        if answer.status == 307:
            location = answer.headers.get("Location", "")
            self._follow(location)
            return "redirect"
        if answer.status in (401, 403):
            raise DriverError(f"the master refused this framework: HTTP {answer.status} "
                              f"{answer.text} (check the principal and secret)")
        if answer.status == 400:
            raise DriverError(f"the master refused SUBSCRIBE: {answer.text}")
        return f"HTTP {answer.status} {answer.text}"  # 503 and others: retry later

    def _follow(self, location: str) -> None:
        """Mesos answers 307 with a protocol-relative Location, e.g.
        //10.0.0.2:5050/master/api/v1/scheduler."""
        scheme = (self._base or "http://").split("//")[0] or "http:"
        if location.startswith("//"):
            location = scheme + location
        if "://" not in location:
            location = f"{scheme}//{location}"
        head, _, rest = location.partition("://")
        hostport, slash, path = rest.partition("/")
        self._redirect = f"{head}://{hostport}"
        self._path = f"/{path}" if slash and path else API_PATH
        log.info("following the leading master to %s%s", self._redirect, self._path)

    # ------------------------------------------------------------------ events
    def _dispatch(self, event: Any) -> bool:
        """Hand one event to the scheduler; True for SUBSCRIBED. A malformed event is
        logged and skipped; a malformed SUBSCRIBED makes the stream unusable
        (MalformedEvent: it is dropped and subscribed again)."""
        problem = event_problem(event)
        if problem is not None:
            self._skipped(problem, event)
            if isinstance(event, dict) and event.get("type") == "SUBSCRIBED":
                raise MalformedEvent(problem)
            return False
        kind = event.get("type")
        s = self.scheduler
        if kind == "SUBSCRIBED":
            body = event["subscribed"]
            self.framework_id = body["framework_id"]["value"]
            self._heartbeat, problem = heartbeat_interval(body)
            if problem:
                self._skipped(problem, event)
            self._set_state(DriverState.SUBSCRIBED)
            master = body.get("master_info") or {}
            if self._subscribed_before:
                self._safely(s.reregistered, master)
            else:
                self._subscribed_before = True
                self._safely(s.registered, body["framework_id"], master)
            return True
        if kind == "OFFERS":
            offers = event["offers"].get("offers") or []
            good = [o for o in offers if isinstance(o, dict)]
            if len(good) < len(offers):
                self._skipped(f"{len(offers) - len(good)} offers that are not objects", event)
            self._safely(s.resourceOffers, good)
        elif kind == "UPDATE":
            status, problem = clean_status(event["update"]["status"])
            if problem:
                self._skipped(problem, event)
            self._safely(s.statusUpdate, status)
            self.acknowledgeStatusUpdate(status)  # processed: now acknowledge it
        elif kind == "RESCIND":
            self._safely(s.offerRescinded, event["rescind"]["offer_id"])
        elif kind == "MESSAGE":
            m = event["message"]
            self._safely(s.frameworkMessage, m.get("executor_id"), m.get("agent_id"),
                         b64decode(m.get("data", "")))
        elif kind == "FAILURE":
            f = event["failure"]
            if "executor_id" in f:
                code, problem = failure_status(f)
                if problem:
                    self._skipped(problem, event)
                self._safely(s.executorLost, f["executor_id"], f.get("agent_id"), code)
            elif "agent_id" in f:
                self._safely(s.slaveLost, f["agent_id"])
        elif kind == "INVERSE_OFFERS":
            self._safely(s.inverseOffers, event["inverse_offers"].get("inverse_offers") or [])
        elif kind == "ERROR":
            error = event.get("error")
            message = (error.get("message", "") if isinstance(error, dict) else "") or \
                event.get("message", "")
            raise DriverError(f"Mesos: {message}")
        elif kind in ("HEARTBEAT", "RESCIND_INVERSE_OFFER", "UPDATE_OPERATION_STATUS"):
            pass
        else:
            log.debug("ignoring scheduler event %.100r", kind)
        return False

    def _skipped(self, problem: str, event: Any) -> None:
        with self._state_lock:
            self.malformed_events += 1
            self.last_malformed = problem
        log.warning("malformed event from the master (%s); what cannot be read is skipped: "
                    "%.300r", problem, event)

    def malformed_note(self) -> str | None:
        """A sentence for the status message when the master sent events we skipped."""
        with self._state_lock:
            n, last = self.malformed_events, self.last_malformed
        if not n:
            return None
        return (f"Skipped {n} malformed {'event' if n == 1 else 'events'} (or parts) from "
                f"the Mesos master (last: {last}).")

    def _safely(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(self, *args)
        except Exception:
            log.exception("scheduler callback %s failed", getattr(callback, "__name__", "?"))

    def _watchdog(self) -> None:
        while not self._stopped.wait(1.0):
            stream = self._stream
            silent = time.monotonic() - self._last_event
            if stream is not None and silent > self._heartbeat * self.MISSED_HEARTBEATS:
                log.warning("no event from the master for %.0f s; subscribing again", silent)
                self._reconnect()
