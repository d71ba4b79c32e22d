"""``python -m tests.doubles.kubernetes --nodes 3 --cpu 4 --memory 8Gi``: serve until Ctrl-C,
printing the kubeconfig path (``KUBECONFIG=... kubectl get nodes``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from .cluster import NodeSpec
from .double import KubernetesDouble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--cpu", default="4")
    parser.add_argument("--memory", default="8Gi")
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--no-tls", action="store_true")
    parser.add_argument("--token", default=None)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args()
    nodes = [NodeSpec(cpu=args.cpu, memory=args.memory, gpu=args.gpu) for _ in range(args.nodes)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with KubernetesDouble(nodes, port=args.port, tls=not args.no_tls, token=args.token,
                          work_dir=args.work_dir) as double:
        print(f"serving {double.url}; KUBECONFIG={double.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
