"""The node's side of shipped code: fetch what a task needs, check it, hand it over.

A task's environment names its resources (``MESOBATCH_SHIP*``, see protocol.py). Before
the task starts, the node fetches each blob once (from the scheduler's HTTP server with
the framework's bearer token, or from a shared directory), checks its sha256, keeps it
in a cache named by hash, unpacks packages into the workflow's work directory, and
tells the task where everything is. A function job's outcome goes back the same way.
Standard library only: this runs inside the executor bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import sys
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import function_task as ft
from .protocol import TOIL_RESOURCE_PREFIX, ResourceRef, result_id, shipped_refs

_CHUNK = 1 << 20


class ResourceError(Exception):
    """A resource could not be fetched, or was refused (its hash did not match)."""


def describe(ref: ResourceRef) -> str:
    return f"{ref.kind} resource sha256:{ref.sha256[:16]}"


class _Checked:
    """Files whose content was hashed and matched, until they change: a file someone
    else can write (a shared directory, a shared cache) is never trusted unseen."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int, int]] = {}  # path -> (inode, size, mtime)
        self._lock = threading.Lock()

    def check(self, ref: ResourceRef, path: str, where: str) -> None:
        """Raise ResourceError unless ``path`` holds ``ref``'s content."""
        try:
            st = os.stat(path)
        except OSError as e:
            raise ResourceError(f"{describe(ref)} is not in {where}: {e.strerror}") from e
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._seen.get(path) == key:
                return
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        _check(ref, digest.hexdigest(), st.st_size, where)
        with self._lock:
            self._seen[path] = key

    def remember(self, path: str) -> None:
        """``path`` was just written from content checked on the way in."""
        st = os.stat(path)
        with self._lock:
            self._seen[path] = (st.st_ino, st.st_size, st.st_mtime_ns)


# ------------------------------------------------------------------ sources


class DirectorySource:
    """A store the node can read directly (the local backend, or a shared filesystem):
    blobs in ``<root>/blobs/<sha256>``, outcomes written to ``<root>/results/<id>``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.blob_dir = os.path.join(root, "blobs")
        self._checked = _Checked()

    def describe(self) -> str:
        return self.root

    def result_path(self, rid: str) -> str:
        return os.path.join(self.root, "results", rid)

    def verified_blob(self, ref: ResourceRef) -> str:
        """The blob's path, once its content is known to match its hash."""
        path = os.path.join(self.blob_dir, ref.sha256)
        self._checked.check(ref, path, self.root)
        return path


class HttpSource:
    """The scheduler's resource server: GET /blobs/<sha256>, PUT /results/<id>, each
    with ``Authorization: Bearer <token>``."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not a resource server URL: {url!r}")
        self.url = url.rstrip("/")
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._base = parts.path.rstrip("/")
        self._token = token
        self.timeout = timeout

    def describe(self) -> str:
        return self.url

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._netloc, timeout=self.timeout)
        return http.client.HTTPConnection(self._netloc, timeout=self.timeout)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def download(self, ref: ResourceRef, target: str) -> None:
        """Stream the blob into ``target``, hashing as it comes; refuse a mismatch."""
        conn = self._connect()
        try:
            conn.request("GET", f"{self._base}/blobs/{ref.sha256}", headers=self._headers())
            r = conn.getresponse()
            if r.status != 200:
                raise ResourceError(f"cannot fetch {describe(ref)} from {self.url}: HTTP "
                                    f"{r.status} {r.read(300).decode('utf-8', 'replace')}")
            digest = hashlib.sha256()
            size = 0
            with open(target, "wb") as out:
                while chunk := r.read(_CHUNK):
                    size += len(chunk)
                    if size > ref.size:
                        break  # more than was shipped: no need to read the rest
                    digest.update(chunk)
                    out.write(chunk)
        except (OSError, http.client.HTTPException) as e:
            raise ResourceError(f"cannot fetch {describe(ref)} from {self.url}: {e}") from e
        finally:
            conn.close()
        _check(ref, digest.hexdigest(), size, self.url)

    def upload_result(self, rid: str, path: str) -> None:
        size = os.path.getsize(path)
        conn = self._connect()
        try:
            with open(path, "rb") as body:
                conn.request("PUT", f"{self._base}/results/{rid}", body=body,
                             headers={**self._headers(), "Content-Length": str(size),
                                      "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            text = r.read(300).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            raise ResourceError(f"cannot return result {rid} to {self.url}: {e}") from e
        finally:
            conn.close()
        if r.status not in (200, 201, 204):
            raise ResourceError(f"{self.url} refused result {rid}: HTTP {r.status} {text}")


    def upload_log(self, name: str, body: bytes) -> None:
        """A job's log (``name`` from log_file_name) to the scheduler's log directory."""
        conn = self._connect()
        try:
            conn.request("PUT", f"{self._base}/logs/{name}", body=body,
                         headers={**self._headers(), "Content-Length": str(len(body)),
                                  "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            text = r.read(300).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            raise ResourceError(f"cannot return log {name} to {self.url}: {e}") from e
        finally:
            conn.close()
        if r.status not in (200, 201, 204):
            raise ResourceError(f"{self.url} refused log {name}: HTTP {r.status} {text}")


Source = DirectorySource | HttpSource


def source_for(url: str, token: str) -> Source:
    """A source from what the scheduler sent: http(s)://... or a shared directory."""
    if url.startswith(("http://", "https://")):
        return HttpSource(url, token)
    path = url[len("file://"):] if url.startswith("file://") else url
    if not os.path.isabs(path):
        raise ValueError(f"not a resource location: {url!r}")
    return DirectorySource(path)


def _check(ref: ResourceRef, got: str, size: int, where: str) -> None:
    if got != ref.sha256 or size != ref.size:
        raise ResourceError(
            f"refused {describe(ref)} from {where}: its content has sha256:{got[:16]} and "
            f"{size} bytes, not the sha256:{ref.sha256[:16]} and {ref.size} bytes it was "
            "shipped as (tampered with or corrupted on the way)")


# ------------------------------------------------------------------ the node's cache


@dataclass
class Prepared:
    """What a task gets from its node: variables, and where its outcome goes."""

    env: dict[str, str] = field(default_factory=dict)
    result_file: str | None = None
    result_id: str | None = None
    #: the outcome must be sent to the scheduler after the task ends (HTTP sources)
    upload: HttpSource | None = None


def _python_runner() -> str:
    """What ``$MESOBATCH_PYTHON`` runs for a function job: the executor bundle when this
    code runs from one (it carries cloudpickle), else function_task.py by path."""
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(package):  # .../mesobatch-executor.pyz/mesobatch/executor/shipping.py
        return package
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "function_task.py")


def runner_argv() -> list[str]:
    """A function job's command (function_task.COMMAND) as arguments, as the node
    fills in its variables; fork servers add a flag."""
    return [sys.executable, _python_runner(), "run-function"]


class NodeResources:
    """Blobs fetched to this node, by hash; one download per blob however many tasks
    ask for it at once. The cache may be shared by several executors (writes are
    atomic renames of verified files)."""

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._checked = _Checked()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def blob(self, ref: ResourceRef, source: Source) -> str:
        """A verified local copy of ``ref`` (fetched unless cached)."""
        if isinstance(source, DirectorySource):
            return source.verified_blob(ref)
        path = os.path.join(self.cache_dir, ref.sha256)
        with self._lock_for(ref.sha256):
            if os.path.exists(path):
                try:
                    self._checked.check(ref, path, self.cache_dir)
                    return path
                except ResourceError as e:  # not what it claims to be: fetch it afresh
                    try:
                        os.unlink(path)
                    except OSError as err:
                        raise ResourceError(f"{e}; and it cannot be replaced: {err}") from err
            os.makedirs(self.cache_dir, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.part"
            try:
                source.download(ref, tmp)
                os.replace(tmp, path)
                self._checked.remember(path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return path

    def unpack(self, ref: ResourceRef, blob: str, into: str) -> str:
        """A zipped package, unpacked once into ``into/<sha256>`` (for sys.path)."""
        target = os.path.join(into, ref.sha256)
        if os.path.isdir(target):
            return target
        with self._lock_for("unpack:" + target):
            if os.path.isdir(target):
                return target
            os.makedirs(into, exist_ok=True)
            tmp = f"{target}.{os.getpid()}.part"
            try:
                with zipfile.ZipFile(blob) as z:
                    for name in z.namelist():
                        parts = name.replace("\\", "/").split("/")
                        if name.startswith("/") or ".." in parts:
                            raise ResourceError(f"{describe(ref)}: unsafe member {name!r}")
                    z.extractall(tmp)
                os.replace(tmp, target)
            except zipfile.BadZipFile as e:
                raise ResourceError(f"{describe(ref)} is not a zip file: {e}") from e
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def prepare(self, env: Mapping[str, str], source: Source | None, work_dir: str,
                task_key: str) -> Prepared:
        """Fetch and check everything the job's environment names; the variables the
        task needs. Raises ResourceError (then the task must not run)."""
        try:
            refs = shipped_refs(env)
            rid = result_id(env)
        except ValueError as e:
            raise ResourceError(str(e)) from e
        out = Prepared(result_id=rid)
        if "JTRES_ROOT" not in env and any(k.startswith(TOIL_RESOURCE_PREFIX) for k in env):
            # Toil's worker downloads its resources there: worker cleanup removes them
            # with the workflow's work directory.
            out.env["JTRES_ROOT"] = os.path.join(work_dir, "toil-resources")
            os.makedirs(out.env["JTRES_ROOT"], exist_ok=True)
        if not refs and rid is None:
            return out
        if source is None:
            raise ResourceError("this task needs shipped resources, but its scheduler sent "
                                "no resource location")
        python_path: list[str] = []
        for ref in refs:
            blob = self.blob(ref, source)
            if ref.kind == "pkg":
                python_path.append(self.unpack(ref, blob, os.path.join(work_dir, "python")))
            elif ref.kind == "fn":
                out.env[ft.FUNCTION_FILE_ENV] = blob
            if ref.kind in ("fn", "obj"):
                out.env[ft.OBJECT_DIR_ENV] = os.path.dirname(blob)
        if python_path:
            old = env.get("PYTHONPATH")
            out.env["PYTHONPATH"] = os.pathsep.join(python_path + ([old] if old else []))
        out.env[ft.PYTHON_ENV] = sys.executable
        out.env[ft.RUNNER_ENV] = _python_runner()
        if rid is not None:
            if isinstance(source, DirectorySource):
                out.result_file = source.result_path(rid)
            else:
                results = os.path.join(work_dir, "results")
                os.makedirs(results, exist_ok=True)
                out.result_file = os.path.join(results, task_key)
                out.upload = source
            out.env[ft.RESULT_FILE_ENV] = out.result_file
        return out


def write_refused(path: str, message: str) -> None:
    """The outcome of a call that never ran because the node refused a resource."""
    ft.write_outcome(path, ("refused", message))
