"""The one place boto3 is called: clients made the standard way, every call counted,
throttling and passing failures tried again with exponential backoff.

Credentials and region come from boto3's standard chain (environment, shared config
and credentials files, SSO, container or instance role); --awsBatchRegion and
--awsBatchEndpoint only override the region and the endpoint. botocore's own retries
are off so that ours are the only ones: bounded, counted, and cut short at shutdown.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .options import AwsBatchOptions

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient

log = logging.getLogger(__name__)
T = TypeVar("T")

#: error codes that mean "slow down" (AWS Batch answers HTTP 429 TooManyRequestsException)
THROTTLING = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling",
                        "RequestLimitExceeded", "LimitExceededException",
                        "ServiceUnavailableException", "ServerException",
                        "InternalFailure", "ServiceUnavailable"})


class AwsError(Exception):
    """An AWS request failed for good: the operation, AWS's code and message."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}" if code else
                         f"{operation}: {message}")
        self.operation = operation
        self.code = code


def backoff(attempt: int, rng: random.Random, base: float = 0.2, cap: float = 20.0) -> float:
    """Full-jitter exponential backoff before try number ``attempt + 1`` (AWS's advice)."""
    return rng.uniform(0, min(cap, base * 2 ** attempt))


class Api:
    """boto3 clients for AWS Batch and CloudWatch Logs, and ``call`` for every request."""

    def __init__(self, options: AwsBatchOptions, stop: threading.Event) -> None:
        import boto3  # noqa: PLC0415 (an optional dependency: loaded with the backend)
        from botocore.config import Config  # noqa: PLC0415
        from botocore.exceptions import NoRegionError  # noqa: PLC0415

        self.attempts = options.api_attempts
        self.stop = stop
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()  #: by operation
        self.throttled = 0  #: requests answered with throttling, tried again
        #: requests whose answer was lost after they were sent (AWS may have acted on
        #: them), by operation: a SubmitJob among them may have left a job we do not know
        self.uncertain: collections.Counter[str] = collections.Counter()
        session = boto3.session.Session(region_name=options.aws_batch_region)
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=10,
                        read_timeout=60, max_pool_connections=16,
                        user_agent_extra="mesobatch")
        try:
            self.batch: BatchClient = session.client(
                "batch", endpoint_url=options.aws_batch_endpoint, config=config)
            self.logs: CloudWatchLogsClient = session.client(
                "logs", endpoint_url=options.aws_batch_endpoint, config=config)
        except NoRegionError:
            raise AwsError("configuration", "NoRegion",
                           "no AWS region: give --awsBatchRegion, or set AWS_REGION or a "
                           "region in the AWS profile") from None
        self.region = self.batch.meta.region_name

    def call(self, method: Callable[..., T], **kwargs: Any) -> T:
        """``method(**kwargs)`` (a bound client method); throttling, server errors and
        connection failures are tried again with backoff, up to --awsBatchApiAttempts
        tries (one once stopping). Raises AwsError."""
        from botocore.exceptions import (  # noqa: PLC0415
            BotoCoreError,
            ClientError,
            ConnectionError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        name = method.__name__
        attempt = 0
        while True:
            with self._lock:
                self.counts[name] += 1
            try:
                return method(**kwargs)
            except ClientError as e:
                error = e.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                passing = code in THROTTLING or status == 429 or status >= 500
                failure = AwsError(name, code, str(error.get("Message", e)))
                if code in THROTTLING or status == 429:
                    with self._lock:
                        self.throttled += 1
            except NoCredentialsError as e:
                raise AwsError(name, "NoCredentials",
                               f"{e} (boto3's standard chain: AWS_ACCESS_KEY_ID, "
                               "AWS_PROFILE, ~/.aws, SSO or an instance role)") from None
            except (ConnectionError, ReadTimeoutError) as e:
                passing, failure = True, AwsError(name, "", str(e))
                if not isinstance(e, EndpointConnectionError | ConnectTimeoutError):
                    with self._lock:  # sent, and no answer: it may have been done
                        self.uncertain[name] += 1
            except BotoCoreError as e:  # a bad parameter and the like
                raise AwsError(name, type(e).__name__, str(e)) from None
            attempt += 1
            if not passing or attempt >= self.attempts or self.stop.is_set():
                raise failure
            delay = backoff(attempt, self._rng)
            log.debug("%s (try %d of %d); again in %.2f s", failure, attempt, self.attempts,
                      delay)
            if self.stop.wait(delay):
                raise failure

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())
