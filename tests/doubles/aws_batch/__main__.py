"""``python -m tests.doubles.aws_batch --port 4566``: serve AWS Batch + GetLogEvents until
Ctrl-C (``aws --endpoint-url http://127.0.0.1:4566 batch describe-jobs ...``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from .double import AwsBatchDouble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--state-delay", type=float, default=0.05)
    parser.add_argument("--minimum-timeout", type=int, default=60)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with AwsBatchDouble(port=args.port, region=args.region, state_delay=args.state_delay,
                        minimum_timeout=args.minimum_timeout) as double:
        print(f"serving {double.endpoint_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
