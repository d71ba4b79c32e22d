"""A content-addressed store for blobs to ship, and the results that come back.

Blobs live in ``<root>/blobs/<sha256>``, named by the sha256 of their content, so a blob
is stored (and shipped, and cached on each node) once however often it is used, and a
node can check what it received. Function results come back into
``<root>/results/<id>``. Every write is a rename of a complete file; names are checked
against fixed patterns, so no other path can be reached through the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

from ..executor.protocol import ResourceRef, is_result_id, is_sha256

_CHUNK = 1 << 20
DEFAULT_MAX_SIZE = 1024**3


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ResourceTooLarge(ValueError):
    """A blob or a result is over the store's size limit."""


class UnexpectedResult(ValueError):
    """A result under an id no call waits for (or one already received)."""


class ResultUpload:
    """One result being received into a temporary file; renamed into place by commit.
    Used as a context manager: leaving it without commit discards the bytes and lets
    the result be sent again."""

    def __init__(self, store: ResourceStore, result_id: str, out: BinaryIO, tmp: str,
                 path: str, length: int) -> None:
        self._store, self.result_id, self._out = store, result_id, out
        self._tmp, self._path, self.length = tmp, path, length
        self.received = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        if self.received + len(chunk) > self.length:
            raise ValueError(f"result {self.result_id}: more than {self.length} bytes")
        self._out.write(chunk)
        self.received += len(chunk)

    def commit(self) -> None:
        if self.received != self.length:
            raise EOFError(f"result {self.result_id} ended after {self.received} of "
                           f"{self.length} bytes")
        self._out.close()
        os.replace(self._tmp, self._path)
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._out.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
        self._store._returned(self.result_id)

    def __enter__(self) -> ResultUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class ResourceStore:
    """Blobs by sha256, results by id, under one directory."""

    def __init__(self, root: str, *, max_size: int = DEFAULT_MAX_SIZE,
                 size_option: str = "maxResourceSize") -> None:
        self.root = root
        self.max_size = max_size
        self._size_option = size_option
        self.blob_dir = os.path.join(root, "blobs")
        self.result_dir = os.path.join(root, "results")
        self._tmp_dir = os.path.join(root, "tmp")
        for d in (self.blob_dir, self.result_dir, self._tmp_dir):
            os.makedirs(d, exist_ok=True)
        self._public: set[str] = set()
        self._expected: set[str] = set()  # result ids a call waits for
        self._lock = threading.Lock()
        #: called with each sha256 deleted (the server forgets its transfer counts)
        self.on_delete: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ blobs
    def put_bytes(self, data: bytes, kind: str = "obj", *, public: bool = False
                  ) -> ResourceRef:
        """Store ``data`` (once per content); its reference."""
        self._check_size(len(data), "resource")
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blob_dir, digest)
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=self._tmp_dir)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return self._added(ResourceRef(kind, digest, len(data)), public)

    def put_file(self, source: str, kind: str = "obj", *, public: bool = False
                 ) -> ResourceRef:
        """Store a copy of a file, hashed as it is copied."""
        size = os.path.getsize(source)
        self._check_size(size, f"file {source}")
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            path = os.path.join(self.blob_dir, digest.hexdigest())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return self._added(ResourceRef(kind, digest.hexdigest(), size), public)

    def _added(self, ref: ResourceRef, public: bool) -> ResourceRef:
        if public:
            with self._lock:
                self._public.add(ref.sha256)
        return ref

    def blob_path(self, sha256: str) -> str | None:
        """The blob's file, or None if the name is not a sha256 or the blob is absent."""
        if not is_sha256(sha256):
            return None
        path = os.path.join(self.blob_dir, sha256)
        return path if os.path.isfile(path) else None

    def is_public(self, sha256: str) -> bool:
        """Public blobs (the executor bundle) may be fetched without the token: the
        Mesos fetcher cannot send one, and they hold nothing of the user's."""
        with self._lock:
            return sha256 in self._public

    def delete(self, refs: Iterable[ResourceRef]) -> None:
        for ref in refs:
            path = self.blob_path(ref.sha256)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            with self._lock:
                self._public.discard(ref.sha256)
            for listener in self.on_delete:
                listener(ref.sha256)

    # ------------------------------------------------------------------ results
    def result_path(self, result_id: str) -> str:
        if not is_result_id(result_id):
            raise ValueError(f"not a result id: {result_id!r}")
        return os.path.join(self.result_dir, result_id)

    def expect_result(self, result_id: str) -> None:
        """A call's outcome will come back under this id: only such ids are received
        (receive_result), each once, so nobody can fill the store with results no one
        will collect."""
        self.result_path(result_id)
        with self._lock:
            self._expected.add(result_id)

    def forget_result(self, result_id: str) -> None:
        """No one will collect this result (the call was cancelled): refuse it, drop it."""
        with self._lock:
            self._expected.discard(result_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.result_path(result_id))

    def receive_result(self, result_id: str, length: int) -> ResultUpload:
        """Start receiving an expected result of ``length`` bytes (write, then commit).
        Raises UnexpectedResult for an id nobody waits for (or one already received),
        ResourceTooLarge over the size limit."""
        path = self.result_path(result_id)
        self._check_size(length, "result")
        with self._lock:
            if result_id not in self._expected:
                raise UnexpectedResult(f"no result is expected under {result_id}")
            self._expected.discard(result_id)  # once
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir)
        return ResultUpload(self, result_id, os.fdopen(fd, "wb"), tmp, path, length)

    def _returned(self, result_id: str) -> None:
        """An upload did not complete: the result may be sent again."""
        with self._lock:
            self._expected.add(result_id)

    def write_result(self, result_id: str, body: Readable, length: int) -> None:
        """Receive an expected result of ``length`` bytes from ``body``; atomic,
        size-limited."""
        upload = self.receive_result(result_id, length)
        with upload:
            left = length
            while left > 0:
                chunk = body.read(min(_CHUNK, left))
                if not chunk:
                    raise EOFError(f"result {result_id} ended after {length - left} of "
                                   f"{length} bytes")
                upload.write(chunk)
                left -= len(chunk)
            upload.commit()

    def take_result(self, result_id: str) -> bytes | None:
        """A result's bytes, removed from the store; None if none came. Either way the
        id is no longer expected."""
        path = self.result_path(result_id)
        with self._lock:
            self._expected.discard(result_id)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        os.unlink(path)
        return data

    # ------------------------------------------------------------------ lifetime
    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_size:
            raise ResourceTooLarge(
                f"{what} of {size} bytes is over the limit of {self.max_size} bytes; raise "
                f"it with --{self._size_option}")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
