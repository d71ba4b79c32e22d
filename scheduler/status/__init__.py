"""The live status of one batch system: a recorder fed by the core's events, immutable
snapshots of it, Prometheus metrics, an HTML page, JSON, and the HTTP server for them.

Nothing here runs on the scheduling path but one append to a deque per event: the
recorder's own thread does the bookkeeping, and the server reads snapshots.
"""
