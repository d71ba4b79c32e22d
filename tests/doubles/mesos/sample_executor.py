"""A tiny custom executor for tests (stdlib only), shaped like the wire recorder's executor.

Task data (base64 of text) controls it: ``finish`` = TASK_RUNNING then TASK_FINISHED,
``run`` = TASK_RUNNING only, ``fail`` = TASK_RUNNING then TASK_FAILED, ``exit`` = exit(7) at
once. A scheduler MESSAGE ``exit`` makes it exit(7); any other text is echoed back as
``echo:<text>``. KILL gives TASK_KILLING (when the framework has TASK_KILLING_STATE) and then
TASK_KILLED. With MESOS_CHECKPOINT=1 a lost stream is re-subscribed with backoff, listing the
unacknowledged tasks and updates (``SAMPLE_DOWN_UPDATE=1``: first send one update while the
agent is away, as the recorder did). ``SAMPLE_FINISH_DELAY`` (seconds, default 0.05) spaces
RUNNING and FINISHED; ``SAMPLE_KILL_DELAY`` (default 0.05) spaces KILLING and KILLED.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from typing import Any

Json = dict[str, Any]


class Connection:
    """A minimal HTTP/1.1 client over one keep-alive socket."""

    def __init__(self, endpoint: str) -> None:
        host, _, port = endpoint.rpartition(":")
        self.address = (host, int(port))
        self.sock: socket.socket | None = None
        self.buffer = b""

    def connect(self) -> None:
        self.sock = socket.create_connection(self.address, timeout=30)
        self.sock.settimeout(None)
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def send(self, body: Json) -> tuple[int, dict[str, str]]:
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        data = json.dumps(body).encode()
        head = (
            f"POST /api/v1/executor HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + data)
        status, headers = self.read_head()
        return status, headers

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        return status, headers

    def read_body(self, headers: dict[str, str]) -> bytes:
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def read_chunk(self) -> bytes | None:
        """One chunk of a chunked body; None at the terminating chunk."""
        while b"\r\n" not in self.buffer:
            self._fill()
        size_line, self.buffer = self.buffer.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(self.buffer) < size + 2:
            self._fill()
        chunk, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
        return chunk if size else None

    def _fill(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        self.buffer += data


class Executor:
    def __init__(self) -> None:
        env = os.environ
        self.endpoint = env["MESOS_AGENT_ENDPOINT"]
        self.framework_id = env["MESOS_FRAMEWORK_ID"]
        self.executor_id = env["MESOS_EXECUTOR_ID"]
        self.checkpoint = env.get("MESOS_CHECKPOINT") == "1"
        self.backoff_max = _seconds(env.get("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"))
        self.recovery_timeout = _seconds(env.get("MESOS_RECOVERY_TIMEOUT", "15mins"))
        self.finish_delay = float(env.get("SAMPLE_FINISH_DELAY", "0.05"))
        self.kill_delay = float(env.get("SAMPLE_KILL_DELAY", "0.05"))
        self.calls = Connection(self.endpoint)
        self.lock = threading.Lock()
        self.tasks: dict[str, Json] = {}
        self.unacked_tasks: dict[str, Json] = {}
        self.unacked_updates: dict[str, Json] = {}
        self.terminal: set[str] = set()
        self.killing_state = False
        self.shutting_down = False

    # -- calls ---------------------------------------------------------------------------------
    def call(self, body: Json) -> int:
        body = {
            "framework_id": {"value": self.framework_id},
            "executor_id": {"value": self.executor_id},
            **body,
        }
        with self.lock:
            for attempt in range(2):
                try:
                    status, headers = self.calls.send(body)
                    self.calls.read_body(headers)
                    return status
                except OSError:
                    self.calls.close()
                    if attempt:
                        return 0
        return 0

    def update(
        self, task_id: str, state: str, message: str | None = None, data: str | None = None
    ) -> None:
        status: Json = {
            "task_id": {"value": task_id},
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
        }
        if message is not None:
            status["message"] = message
        if data is not None:
            status["data"] = base64.b64encode(data.encode()).decode()
        self.unacked_updates[status["uuid"]] = status
        if state in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR"):
            self.terminal.add(task_id)
        self.call({"type": "UPDATE", "update": {"status": status}})

    def message(self, text: str) -> None:
        data = base64.b64encode(text.encode()).decode()
        self.call({"type": "MESSAGE", "message": {"data": data}})

    # -- events --------------------------------------------------------------------------------
    def handle(self, event: Json) -> None:
        kind = event["type"]
        if kind == "SUBSCRIBED":
            capabilities = event["subscribed"]["framework_info"].get("capabilities", [])
            self.killing_state = {"type": "TASK_KILLING_STATE"} in capabilities
        elif kind == "LAUNCH":
            self.launch(event["launch"]["task"])
        elif kind == "LAUNCH_GROUP":
            for task in event["launch_group"]["task_group"]["tasks"]:
                self.launch(task)
        elif kind == "KILL":
            task_id = event["kill"]["task_id"]["value"]
            threading.Thread(target=self.kill, args=(task_id,), daemon=True).start()
        elif kind == "ACKNOWLEDGED":
            ack = event["acknowledged"]
            self.unacked_updates.pop(ack["uuid"], None)
            self.unacked_tasks.pop(ack["task_id"]["value"], None)
        elif kind == "MESSAGE":
            text = base64.b64decode(event["message"]["data"]).decode()
            if text == "exit":
                os._exit(7)
            threading.Thread(target=self.message, args=("echo:" + text,), daemon=True).start()
        elif kind == "SHUTDOWN":
            self.shutdown()
        elif kind == "ERROR":
            sys.stderr.write(f"ERROR event: {event}\n")

    def launch(self, task: Json) -> None:
        task_id = task["task_id"]["value"]
        self.tasks[task_id] = task
        self.unacked_tasks[task_id] = task
        mode = base64.b64decode(task.get("data", "")).decode() or "finish"
        if mode == "exit":
            os._exit(7)
        threading.Thread(target=self.run_task, args=(task_id, mode), daemon=True).start()

    def run_task(self, task_id: str, mode: str) -> None:
        if mode == "bench":  # three updates, no delay: the benchmark's per-task traffic
            self.update(task_id, "TASK_STARTING")
            self.update(task_id, "TASK_RUNNING")
            self.update(task_id, "TASK_FINISHED")
            return
        self.update(task_id, "TASK_RUNNING")
        if mode in ("finish", "fail"):
            time.sleep(self.finish_delay)
            if task_id in self.terminal:
                return
            if mode == "finish":
                self.update(
                    task_id, "TASK_FINISHED", "custom executor done", f"result-of-{task_id}"
                )
            else:
                self.update(task_id, "TASK_FAILED", "custom executor failed")

    def kill(self, task_id: str) -> None:
        if task_id in self.terminal:
            return
        if self.killing_state:
            self.update(task_id, "TASK_KILLING")
        time.sleep(self.kill_delay)
        self.update(task_id, "TASK_KILLED", "killed by executor")

    def shutdown(self) -> None:
        self.shutting_down = True
        for task_id in list(self.tasks):
            if task_id not in self.terminal:
                self.update(task_id, "TASK_KILLED", "executor shutdown")
        os._exit(0)

    # -- subscription ----------------------------------------------------------------------------
    def subscribe_body(self) -> Json:
        subscribe: Json = {}
        if self.unacked_tasks:
            subscribe["unacknowledged_tasks"] = list(self.unacked_tasks.values())
        if self.unacked_updates:
            subscribe["unacknowledged_updates"] = [
                {"status": s} for s in self.unacked_updates.values()
            ]
        return {
            "type": "SUBSCRIBE",
            "framework_id": {"value": self.framework_id},
            "executor_id": {"value": self.executor_id},
            "subscribe": subscribe,
        }

    def stream(self) -> None:
        """Subscribe and dispatch events until the stream ends."""
        conn = Connection(self.endpoint)
        conn.connect()
        try:
            status, headers = conn.send(self.subscribe_body())
            if status != 200:
                sys.stderr.write(f"SUBSCRIBE failed: {status} {conn.read_body(headers)!r}\n")
                raise ConnectionError("subscribe refused")
            pending = b""
            while True:
                chunk = conn.read_chunk()
                if chunk is None:
                    return
                pending += chunk
                while b"\n" in pending:
                    size_text, rest = pending.split(b"\n", 1)
                    size = int(size_text)
                    if len(rest) < size:
                        break
                    self.handle(json.loads(rest[:size]))
                    pending = rest[size:]
        finally:
            conn.close()

    def run(self) -> None:
        down_update = os.environ.get("SAMPLE_DOWN_UPDATE") == "1"
        while True:
            try:
                self.stream()
                return  # terminating chunk: the agent ended the stream on purpose
            except (OSError, ValueError):
                if not self.checkpoint or self.shutting_down:
                    return
            if down_update and self.tasks:
                # Like the recorder's WIRE_DOWN_UPDATE: one update while the agent is away.
                down_update = False
                task_id = next(iter(self.tasks))
                self.update(task_id, "TASK_RUNNING", "sent while agent was down")
            lost = time.monotonic()
            backoff = 0.1
            while time.monotonic() - lost < self.recovery_timeout:
                time.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                try:
                    socket.create_connection(self.calls.address, timeout=1).close()
                    break
                except OSError:
                    continue
            else:
                return


def _seconds(text: str) -> float:
    units = {"weeks": 604800.0, "days": 86400.0, "hrs": 3600.0, "mins": 60.0, "secs": 1.0}
    units.update({"ms": 1e-3, "us": 1e-6, "ns": 1e-9})
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def main() -> None:
    Executor().run()


if __name__ == "__main__":
    main()
