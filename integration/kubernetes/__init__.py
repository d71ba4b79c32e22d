"""The Kubernetes backend: one batch/v1 Job per job, watched through one pod watch.

options.py (typed options and their parsers), quantity.py (Kubernetes quantities),
manifest.py (pure Job builder), pod_status.py (pure reading of a pod's status),
capacity.py (pure cluster model from nodes), api.py (the lightkube edge) and
backend.py (threads and bookkeeping).
"""
