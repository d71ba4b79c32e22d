"""The status page: one self-refreshing HTML document built from a snapshot (pure).

Server-side rendering with no script: it works in any browser, a phone's included,
and a refresh costs one snapshot (reused between clients)."""

from __future__ import annotations

import time
from html import escape

from .snapshot import Failure, Finished, NodeView, RunningJob, ShapeView, Snapshot

#: seconds between the page's own refreshes
REFRESH_SECONDS = 2

_CSS = """
:root{--fg:#1d2430;--muted:#5b6575;--line:#dde2ea;--ok:#1a7f37;--bad:#c0362c;--run:#1f6feb}
*{box-sizing:border-box}
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;
margin:0;color:var(--fg);background:#f6f8fa}
header{background:#1d2430;color:#fff;padding:10px 16px}
header h1{font-size:18px;margin:0}header small{color:#b8c2d0}
main{padding:8px 12px;max-width:1100px;margin:auto}
section{background:#fff;border:1px solid var(--line);border-radius:8px;margin:10px 0;
padding:8px 12px}
h2{font-size:16px;margin:4px 0 8px}
.totals{display:flex;flex-wrap:wrap;gap:8px}
.card{flex:1 1 90px;border:1px solid var(--line);border-radius:6px;padding:6px 8px}
.card b{display:block;font-size:22px}.card span{color:var(--muted);font-size:13px}
.ok b{color:var(--ok)}.bad b{color:var(--bad)}.run b{color:var(--run)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#e8ecf2;border-radius:3px;height:8px;min-width:60px}
.bar i{display:block;height:8px;border-radius:3px;background:var(--run)}
pre{background:#f3f4f6;margin:4px 0 0;padding:6px;font-size:12px;white-space:pre-wrap;
word-break:break-all;max-height:12em;overflow:auto}
.alert{background:#fdecea;border-color:#f5c2c0;color:var(--bad)}
.muted{color:var(--muted)}
.over{color:var(--bad);font-weight:600}
svg{width:100%;height:48px}
@media (max-width:560px){body{font-size:14px}main{padding:4px 6px}
section{padding:6px 8px}table{font-size:13px}th,td{padding:3px 4px}.wide{display:none}}
"""


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _bytes(n: float) -> str:
    gib = n / 2**30
    return f"{gib:.1f} GiB" if gib >= 1 else f"{n / 2**20:.0f} MiB"


def _bar(fraction: float) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    return f'<div class="bar" title="{pct:.0f}%"><i style="width:{pct:.0f}%"></i></div>'


def sparkline(values: tuple[float, ...], width: int = 300, height: int = 40) -> str:
    """An inline SVG line of ``values`` (oldest left), scaled to its largest value."""
    if not values:
        return ""
    if len(values) == 1:
        values = values * 2
    top = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - v / top * (height - 2) - 1:.1f}"
                      for i, v in enumerate(values))
    return (f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
            f'role="img" aria-label="throughput"><polyline fill="none" stroke="#1f6feb" '
            f'stroke-width="2" points="{points}"/></svg>')


def _totals(s: Snapshot) -> str:
    t = s.totals
    cards = [("run", t.running, "running"), ("", t.queued, "queued"),
             ("ok", t.succeeded, "succeeded"), ("bad", t.failed, "failed"),
             ("", t.killed, "killed"), ("", t.issued, "issued")]
    return '<div class="totals">' + "".join(
        f'<div class="card {cls}"><b>{n}</b><span>{label}</span></div>'
        for cls, n, label in cards) + "</div>"


def _table(head: list[str], rows: list[str], numeric: frozenset[int] = frozenset(),
           wide: frozenset[int] = frozenset()) -> str:
    """A table; ``wide`` columns are left out on a phone's narrow screen."""
    def cls(i: int) -> str:
        names = " ".join(n for n, on in (("n", i in numeric), ("wide", i in wide)) if on)
        return f' class="{names}"' if names else ""

    ths = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(head))
    return f'<div class="scroll"><table><tr>{ths}</tr>{"".join(rows)}</table></div>'


def _queue(shapes: tuple[ShapeView, ...]) -> str:
    if not shapes:
        return '<p class="muted">Nothing waits.</p>'
    rows = [f'<tr><td>{escape(q.shape)}</td><td class="n">{q.jobs}</td>'
            f"<td>{escape(q.why)}</td></tr>" for q in shapes]
    return _table(["shape", "jobs", "why it waits"], rows, frozenset({1}))


def _nodes(nodes: tuple[NodeView, ...]) -> str:
    if not nodes:
        return '<p class="muted">No node seen yet.</p>'
    rows = [f'<tr><td>{escape(n.name)}</td><td class="wide">{escape(n.state)}</td>'
            f'<td class="n">{n.jobs}</td>'
            f'<td class="n">{n.cores_requested:g} / {n.cores_total:g}</td>'
            f"<td>{_bar(n.cpu_load)}</td>"
            f'<td>{_bar(n.memory_used)}<span class="muted">{_bytes(n.memory_total)}</span></td>'
            "</tr>" for n in nodes]
    return _table(["node", "state", "jobs", "cores asked", "cpu load", "memory used"], rows,
                  frozenset({2, 3}), frozenset({1}))


def _running(jobs: tuple[RunningJob, ...], more: int) -> str:
    if not jobs:
        return '<p class="muted">No job runs.</p>'
    rows = [f'<tr><td class="n">{j.job_id}</td><td>{escape(j.name)}</td>'
            f"<td>{escape(j.node)}</td><td>{escape(j.state)}</td>"
            f'<td class="n">{_duration(j.run_time)}</td><td class="n wide">{j.cores:g}</td>'
            f'<td class="n wide">{_bytes(j.memory)}</td></tr>' for j in jobs]
    extra = f'<p class="muted">... and {more} more</p>' if more else ""
    return _table(["id", "name", "node", "state", "run time", "cores", "memory"], rows,
                  frozenset({0, 4, 5, 6}), frozenset({5, 6})) + extra


def _used(j: Failure | Finished) -> str:
    """Peak memory of asked, CPU seconds, and the far-over flag (the summary's rule)."""
    peak = (_bytes(j.peak_memory) if j.peak_memory is not None
            else f"&le; {_bytes(j.memory_at_most)}" if j.memory_at_most is not None else "?")
    cpu = f"{j.cpu_time:.1f} s cpu" if j.cpu_time is not None else "? cpu"
    flag = f' <span class="over">over: {escape(", ".join(j.over))}</span>' if j.over else ""
    return f"{peak} of {_bytes(j.memory)} &middot; {cpu}{flag}"


def _failure(f: Failure, now: float) -> str:
    tail = "\n".join(f.log_tail)
    log = (f"<pre>{escape(tail)}</pre>" if tail else "")
    where = f' <span class="muted">{escape(f.log_path)}</span>' if f.log_path and tail else ""
    message = f"<div>{escape(f.message)}</div>" if f.message else ""
    return (f"<tr><td class=n>{f.job_id}</td><td>{escape(f.name)}</td><td>{escape(f.result)}"
            f"</td><td class=n>{f.exit_code}</td><td>{escape(f.node)}</td>"
            f"<td>{_used(f)}</td><td>{_duration(now - f.ended_at)} ago</td></tr>"
            f'<tr><td></td><td colspan="6">{message}{where}{log}</td></tr>')


def _failures(failures: tuple[Failure, ...], now: float) -> str:
    if not failures:
        return '<p class="muted">No job failed.</p>'
    return _table(["id", "name", "result", "exit", "node", "used (peak of asked)", "ended"],
                  [_failure(f, now) for f in failures], frozenset({0, 3}))


def _finished(jobs: tuple[Finished, ...], now: float) -> str:
    if not jobs:
        return '<p class="muted">No job finished yet.</p>'
    rows = [f'<tr><td class="n">{j.job_id}</td><td>{escape(j.name)}</td>'
            f"<td>{escape(j.node)}</td><td class=n>{_duration(j.wall_time)}</td>"
            f"<td>{_used(j)}</td><td>{_duration(now - j.ended_at)} ago</td></tr>"
            for j in jobs]
    return _table(["id", "name", "node", "wall time", "used (peak of asked)", "ended"], rows,
                  frozenset({0, 3}))


def render_page(s: Snapshot) -> str:
    """The whole HTML page for one snapshot."""
    now = s.taken_at
    recent = s.throughput[-6:]
    rate = sum(recent) / len(recent) if recent else 0.0
    alert = (f'<section class="alert"><b>The backend cannot run jobs:</b> '
             f"{escape(s.fatal_error)}</section>" if s.fatal_error else "")
    message = f'<p class="muted">{escape(s.note)}</p>' if s.note else ""
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>mesobatch: {s.totals.running} running, {s.totals.queued} queued</title>
<style>{_CSS}</style></head>
<body><header><h1>mesobatch &middot; {escape(s.backend)}</h1>
<small>workflow {escape(s.workflow_id)} &middot; up {_duration(now - s.started_at)}
&middot; at {stamp}</small></header>
<main>{alert}
<section id="totals"><h2>Totals</h2>{_totals(s)}</section>
<section id="throughput"><h2>Throughput <span class="muted">{rate:.1f} jobs/s in the
last minute</span></h2>{sparkline(s.throughput)}
<div class="muted">jobs finished per second, {s.bucket_seconds:g} s buckets</div></section>
<section id="queue"><h2>Queue by shape</h2>{_queue(s.queue)}{message}</section>
<section id="running"><h2>Running jobs</h2>{_running(s.running, s.running_not_shown)}</section>
<section id="nodes"><h2>Nodes</h2>{_nodes(s.nodes)}</section>
<section id="failures"><h2>Recent failures</h2>{_failures(s.failures, now)}</section>
<section id="finished"><h2>Recently finished</h2>{_finished(s.finished, now)}</section>
<p class="muted">Also: <a href="/api/status">/api/status</a> (JSON) &middot;
<a href="/metrics">/metrics</a> (Prometheus)</p>
</main></body></html>
"""
