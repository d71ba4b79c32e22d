"""Python functions as jobs, on the local backend and on Mesos (the double)."""

from __future__ import annotations

import os
import pickle
import threading
import time
from typing import Any

import pytest

import mesobatch
from mesobatch import (
    FunctionExecutor,
    FunctionJobError,
    InsufficientSystemResources,
    RemoteError,
    RemoteTraceback,
    ResourceRefused,
)
from mesobatch.executor import function_task as ft
from mesobatch.executor.protocol import RESULT_ID_ENV, SHIP_ENV, format_refs

from .conftest import Make, Systems


def test_a_closure_over_local_variables_returns_its_value(make_bs: Make) -> None:
    base, scale = 40, {"factor": 2}
    with FunctionExecutor(make_bs()) as ex:
        assert ex.submit(lambda y: base + scale["factor"] * y, 1).result(timeout=60) == 42

        def describe(word: str, *, times: int = 1) -> tuple[str, int]:
            return (word * times, os.getpid())

        text, pid = ex.submit(describe, "ab", times=3).result(timeout=60)
        assert text == "ababab" and pid != os.getpid()  # ran in a process of its own
        assert list(ex.map(lambda v: v * scale["factor"], range(6), timeout=60)) == [
            0, 2, 4, 6, 8, 10]


def test_an_exception_comes_back_with_its_traceback(make_bs: Make) -> None:
    class Unpicklable(Exception):
        def __reduce__(self) -> str | tuple[Any, ...]:
            raise TypeError("no")

    def parse(text: str) -> int:
        return int(text)

    def deep(text: str) -> int:
        return parse(text) + 1

    def custom() -> None:
        raise Unpicklable("kept as text")

    with FunctionExecutor(make_bs()) as ex:
        with pytest.raises(ValueError, match="invalid literal for int") as caught:
            ex.submit(deep, "forty-two").result(timeout=60)
        remote = caught.value.__cause__
        assert isinstance(remote, RemoteTraceback)
        assert "in deep" in remote.text and "in parse" in remote.text
        assert "ValueError: invalid literal for int() with base 10: 'forty-two'" in remote.text
        with pytest.raises(RemoteError, match="Unpicklable: kept as text") as caught2:
            ex.submit(custom).result(timeout=60)
        assert "in custom" in str(caught2.value.__cause__)
        assert ex.submit(lambda: "still works").result(timeout=60) == "still works"


def test_a_tampered_call_is_refused_and_the_caller_is_told(make_bs: Make) -> None:
    bs = make_bs()
    store = bs.resource_service().store
    call = ft.blob_header() + pickle.dumps((print, ("never",), {}))
    ref = store.put_bytes(call, "fn")
    blob = store.blob_path(ref.sha256)
    assert blob is not None
    with open(blob, "r+b") as f:  # flip one byte
        f.seek(len(call) - 2)
        f.write(b"\x00")
    rid = "ef" * 16
    store.expect_result(rid)
    job = bs.issueBatchJob(ft.COMMAND, mesobatch.JobDescription(
        cores=1, memory=2**26, disk=2**26), {SHIP_ENV: format_refs([ref]), RESULT_ID_ENV: rid})
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.jobID == job
    assert info.exitReason is mesobatch.BatchJobExitReason.FAILED
    data = store.take_result(rid)
    assert data is not None
    kind, message = pickle.loads(data)
    assert kind == "refused" and f"refused fn resource sha256:{ref.sha256[:16]}" in message
    # through the executor, the caller gets it as an exception
    with FunctionExecutor(bs) as ex:
        original = store.put_bytes

        def tamper(data: bytes, kind: str = "obj", **kw: bool) -> object:
            ref = original(data, kind, **kw)
            if kind == "fn":
                with open(store.blob_path(ref.sha256) or "", "ab") as f:
                    f.write(b"!")
            return ref

        store.put_bytes = tamper  # type: ignore[method-assign,assignment]
        with pytest.raises(ResourceRefused, match="tampered with or corrupted"):
            ex.submit(lambda: "never runs").result(timeout=60)
        store.put_bytes = original  # type: ignore[method-assign]


def test_each_call_gets_its_own_resources(make_bs: Make) -> None:
    with FunctionExecutor(make_bs()) as ex:
        threads = ex.with_resources(cores=2, memory="256M").submit(
            lambda: os.environ["OMP_NUM_THREADS"])
        assert threads.result(timeout=60) == "2"
        assert ex.submit(lambda: os.environ["OMP_NUM_THREADS"]).result(timeout=60) == "1"
        with pytest.raises(InsufficientSystemResources, match="memory"):
            ex.with_resources(memory="64G").submit(lambda: None)


def test_an_object_put_once_reaches_every_call(systems: Systems) -> None:
    bs = systems.mesos()
    table = {"rows": list(range(1000))}
    with FunctionExecutor(bs) as ex:
        shared = ex.put(table)
        sums = [ex.submit(lambda t, k: sum(t["rows"]) + k, shared, k) for k in range(4)]
        assert [f.result(timeout=60) for f in sums] == [499500 + k for k in range(4)]
        sent = bs.resource_service().stats().transfers
        assert sent[shared.ref.sha256] == 1  # one agent: one transfer, then its cache


def test_cancel_kills_the_call_and_shutdown_stops_new_ones(systems: Systems) -> None:
    ex = FunctionExecutor("local", maxCores=1, maxMemory="1G", maxDisk="1G", maxGpus=0,
                          killGracePeriod=0.5)
    slow = ex.submit(time.sleep, 60)
    waiting = ex.submit(lambda: "queued")  # one core: it waits behind the slow one
    assert waiting.cancel() and waiting.cancelled()
    assert slow.cancel()
    started = time.monotonic()
    ex.shutdown(wait=True)
    assert time.monotonic() - started < 10
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(lambda: 1)
    assert ex.batch_system.is_shut_down


def test_a_call_whose_job_dies_raises_with_the_reason(make_bs: Make) -> None:
    def die() -> None:
        os._exit(7)

    with FunctionExecutor(make_bs()) as ex:
        with pytest.raises(FunctionJobError, match="exit status 7") as caught:
            ex.submit(die).result(timeout=60)
        assert caught.value.exit_status == 7 and caught.value.exit_reason == "FAILED"


def test_a_call_that_dies_quotes_the_end_of_its_log(systems: Systems) -> None:
    """The batch system's own log directory is gone after shutdown: the error keeps the
    log's last lines (and names the file while it exists)."""
    def die() -> None:
        print("\n".join(f"line {i}" for i in range(30)), flush=True)
        os._exit(3)

    with FunctionExecutor("local", maxCores=1) as ex, pytest.raises(FunctionJobError) as caught:
        ex.submit(die).result(timeout=60)
    message = str(caught.value)
    assert "line 29" in message and "line 10" in message and "line 9\n" not in message
    log_name = message.split("the end of its log, ")[1].split(":\n", maxsplit=1)[0]
    assert log_name.startswith(ex.batch_system.log_dir) and log_name.endswith(".log")


def test_calls_from_many_threads(systems: Systems) -> None:
    with FunctionExecutor(systems.local()) as ex:
        results: list[int] = []
        lock = threading.Lock()

        def caller(n: int) -> None:
            value = ex.submit(lambda: n * n).result(timeout=60)
            with lock:
                results.append(value)

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [n * n for n in range(8)]
