"""The edge to the Kubernetes API, through lightkube: every request the backend makes.

Objects cross this edge as the API's JSON (dicts), so that everything past it is pure
and tested on the API reference's shapes. Errors come out as ``KubeError`` with the
HTTP status (0: no answer) and whether trying again may help.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import httpx2 as httpx
from lightkube import ApiError, Client, KubeConfig
from lightkube.config.client_adapter import Client as HttpClient
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ConfigError
from lightkube.operators import not_in
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Node, Pod
from lightkube.types import CascadeType, OnErrorAction, OnErrorResult

JsonDict = dict[str, Any]

#: statuses worth another try: too many requests, the server busy or restarting
TRANSIENT = frozenset({0, 429, 500, 502, 503, 504})


class KubeError(Exception):
    """A request failed: ``code`` is the HTTP status (0: no answer), ``reason`` the
    Status reason (NotFound, Forbidden, Expired, ...)."""

    def __init__(self, what: str, code: int, reason: str, message: str) -> None:
        super().__init__(f"{what}: {code or 'no answer'} {reason}: {message}".replace(
            ": : ", ": "))
        self.code = code
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT


class Expired(KubeError):
    """410 Gone: the watch's resourceVersion is too old; list again."""


def _error(what: str, e: Exception) -> KubeError:
    if isinstance(e, ApiError):
        st = e.status
        code = int(st.code or 0)
        cls = Expired if code == 410 else KubeError
        return cls(what, code, str(st.reason or ""), str(st.message or ""))
    if isinstance(e, httpx.HTTPStatusError):
        return KubeError(what, e.response.status_code, "", e.response.text[:200])
    return KubeError(what, 0, type(e).__name__, str(e))


def _raise(e: Exception, count: int) -> OnErrorResult:
    return OnErrorResult(OnErrorAction.RAISE)


@dataclass(frozen=True, slots=True)
class Target:
    """Which cluster, as whom, and the namespace."""

    config: SingleConfig
    namespace: str


def load_target(kubeconfig: str | None, context: str | None, namespace: str | None
                ) -> Target:
    """The standard way: ``kubeconfig`` if given, else the in-cluster service account,
    else $KUBECONFIG or ~/.kube/config; its current context, or ``context``."""
    try:
        found = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        config = found.get(context_name=context)
    except (ConfigError, OSError) as e:
        where = f"context {context!r}" if context else "a cluster"
        raise RuntimeError(
            f"cannot find {where} to use: {e} (the kubernetes backend uses the pod's "
            "service account in a cluster, else $KUBECONFIG or ~/.kube/config; "
            "--kubernetesContext picks a context)") from None
    if config is None:
        raise RuntimeError("the kubeconfig has no current context: give --kubernetesContext")
    return Target(config, namespace or config.namespace)


class KubeApi:
    """The requests, each one HTTP request (the watch: one per resumption)."""

    def __init__(self, target: Target, timeout: float = 30.0) -> None:
        self.namespace = target.namespace
        self.server = target.config.cluster.server
        limits = httpx.Timeout(timeout)
        self._client = Client(target.config, namespace=target.namespace, timeout=limits,
                              field_manager="mesobatch")
        # a client of its own: its requests block for as long as the watch lasts
        self._watch_client = Client(target.config, namespace=target.namespace,
                                    timeout=limits, field_manager="mesobatch")
        # lightkube's deletecollection takes no label selector: the same request by hand,
        # through the httpx client lightkube makes from the same configuration
        self._http = HttpClient(target.config, ConnectionParams(timeout=limits))

    def close(self) -> None:
        for c in (self._client, self._watch_client):
            c._client._client.close()  # lightkube has no close(); its httpx client has
        self._http.close()

    # -- jobs ---------------------------------------------------------------------------
    def create_job(self, manifest: JsonDict) -> None:
        name = manifest["metadata"]["name"]
        try:
            self._client.create(cast(Job, Job.from_dict(manifest)))
        except Exception as e:  # every failure becomes a KubeError
            raise _error(f"cannot create Job {name}", e) from None

    def delete_job(self, name: str, grace: float) -> bool:
        """Delete a Job and, first, its pod (foreground); False if it was gone."""
        try:
            self._client.delete(Job, name, grace_period=math.ceil(grace),
                                cascade=CascadeType.FOREGROUND)
        except Exception as e:
            err = _error(f"cannot delete Job {name}", e)
            if err.code == 404:
                return False
            raise err from None
        return True

    def delete_collections(self, selector: str, grace: float) -> None:
        """Delete every Job and pod with these labels (deletecollection)."""
        params: dict[str, str | int] = {"labelSelector": selector,
                                        "propagationPolicy": "Background",
                                        "gracePeriodSeconds": math.ceil(grace)}
        ns = self.namespace
        for path in (f"/apis/batch/v1/namespaces/{ns}/jobs", f"/api/v1/namespaces/{ns}/pods"):
            try:
                self._http.delete(path, params=params).raise_for_status()
            except Exception as e:
                raise _error(f"cannot delete {path}?labelSelector={selector}", e) from None

    # -- pods ---------------------------------------------------------------------------
    def list_pods(self, selector: str) -> tuple[list[JsonDict], str]:
        """Pods with these labels, and the list's resourceVersion."""
        try:
            found = self._client.list(Pod, namespace=self.namespace, labels=_labels(selector))
            items = [p.to_dict() for p in found]
            return items, found.resourceVersion
        except Exception as e:
            raise _error(f"cannot list pods {selector}", e) from None

    def watch_pods(self, selector: str, version: str, timeout: int
                   ) -> Iterator[tuple[str, JsonDict]]:
        """Changes to pods with these labels after ``version``, for ever (lightkube resumes
        from the last version when the server ends the watch); Expired on 410 Gone."""
        try:
            for kind, pod in self._watch_client.watch(
                    Pod, namespace=self.namespace, labels=_labels(selector),
                    resource_version=version, server_timeout=timeout, on_error=_raise):
                yield kind, pod.to_dict()
        except Exception as e:
            raise _error(f"watch of pods {selector} failed", e) from None

    def copy_log(self, pod: str, container: str, out: IO[str]) -> None:
        """Write a pod's log to ``out`` as it streams in (it may be large)."""
        try:
            for line in self._client.log(pod, container=container):
                out.write(line)
        except Exception as e:
            raise _error(f"cannot read the log of pod {pod}", e) from None

    def job_events(self, name: str) -> list[JsonDict]:
        """The events about one Job (why it has no pod, say)."""
        try:
            return [e.to_dict() for e in self._client.list(
                Event, namespace=self.namespace,
                fields={"involvedObject.kind": "Job", "involvedObject.name": name})]
        except Exception as e:
            raise _error(f"cannot list the events of Job {name}", e) from None

    def get_pod(self, name: str) -> JsonDict | None:
        """A pod of the namespace; None if there is none of that name."""
        try:
            pod: JsonDict = self._client.get(Pod, name, namespace=self.namespace).to_dict()
        except Exception as e:
            err = _error(f"cannot read pod {name}", e)
            if err.code == 404:
                return None
            raise err from None
        return pod

    def list_foreign_pods(self) -> list[JsonDict]:
        """Every pod of the cluster that has not ended (their requests hold room)."""
        try:
            return [p.to_dict() for p in self._client.list(
                Pod, namespace="*",
                fields={"status.phase": not_in(["Succeeded", "Failed"])})]
        except Exception as e:
            raise _error("cannot list the cluster's pods", e) from None

    # -- nodes --------------------------------------------------------------------------
    def list_nodes(self) -> list[JsonDict]:
        try:
            return [n.to_dict() for n in self._client.list(Node)]
        except Exception as e:
            raise _error("cannot list nodes", e) from None


def _labels(selector: str) -> dict[str, Any]:
    """``k=v,k2=v2`` as lightkube's label mapping."""
    return dict(item.split("=", 1) for item in selector.split(","))
