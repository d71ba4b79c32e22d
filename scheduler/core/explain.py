"""Why jobs wait, in words a user understands (getSchedulingStatusMessage)."""

from __future__ import annotations

from .jobs import Shape
from .nodes import Node
from .resources import format_cores, format_mib
from .scheduler import SchedulerCore


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_DIMENSIONS = (
    ("cores", "cpus", lambda v: f"{format_cores(v)} {'core' if v == 1000 else 'cores'}"),
    ("memory", "mem", format_mib),
    ("disk", "disk", format_mib),
    ("GPUs", "gpus", lambda v: f"{v} {'GPU' if v == 1 else 'GPUs'}"),
)


def _shortfall(core: SchedulerCore, shape: Shape, now: float) -> str | None:
    """Name the resource no recent offer had enough of, and the best offer seen."""
    recent = core.nodes.recent_offers(now)
    for label, attr, fmt in _DIMENSIONS:
        need = getattr(shape.resources, attr)
        if need <= 0:
            continue
        best = max(recent, key=lambda o: getattr(o[1], attr), default=None)
        if best is None or getattr(best[1], attr) < need:
            if best is None:
                return None
            agent_id, res = best
            node = core.nodes.nodes.get(agent_id)
            where = f"agent {agent_id}" + (f" ({node.hostname})" if node and node.hostname
                                           and node.hostname != agent_id else "")
            unit = f" {label}" if label in ("memory", "disk") else ""
            kept = 0 if node is None else (getattr(node.largest_offer, attr)
                                           - getattr(node.largest_usable, attr))
            why = f" for jobs (and {fmt(kept)}{unit} for the executor)" if kept > 0 else ""
            return f"need {fmt(need)}{unit}" + (
                f"; the largest offer in the last {core.nodes.RECENT_SECONDS:g} s had "
                f"{fmt(getattr(res, attr))}{unit}{why} on {where}")
    return None


def shape_reasons(core: SchedulerCore, now: float) -> list[tuple[Shape, int, str]]:
    """(shape, jobs queued, why they wait) for each queued shape, highest priority first."""
    nodes = [n for n in core.nodes.nodes.values()
             if not n.lost and not core.nodes.is_ignored(n.agent_id, n.hostname, n.ip)]
    recent = core.nodes.recent_offers(now)
    return [(shape, count, _why(core, shape, nodes, bool(recent), now))
            for shape, count in core.queue.shapes()]


def _why(core: SchedulerCore, shape: Shape, nodes: list[Node], offered: bool,
         now: float) -> str:
    if not offered and not nodes:
        return "no node has offered resources yet."
    eligible = [n for n in nodes if shape.preemptible or not n.preemptible]
    if not shape.preemptible and nodes and not eligible:
        return "only preemptible nodes are known, and these jobs are not preemptible."
    big_enough = [n for n in eligible if shape.resources.fits_in(n.largest_usable)
                  and n.agent_id not in core.nodes.filtered]
    if big_enough:
        return (f"waiting for resources to free up on {_plural(len(big_enough), 'node')} "
                "large enough.")
    ignored_fit = [n for n in core.nodes.nodes.values()
                   if not n.lost and core.nodes.is_ignored(n.agent_id, n.hostname, n.ip)
                   and (shape.preemptible or not n.preemptible)
                   and shape.resources.fits_in(n.largest_usable)]
    if ignored_fit:
        return ("the only nodes large enough are ignored ("
                + ", ".join(sorted(n.hostname or n.agent_id for n in ignored_fit)) + ").")
    filtered_fit = [n for n in eligible if n.agent_id in core.nodes.filtered
                    and shape.resources.fits_in(n.largest_usable)]
    if filtered_fit:
        return ("the only nodes large enough are rejected by the node filter ("
                + ", ".join(sorted(n.hostname or n.agent_id for n in filtered_fit)) + ").")
    short = _shortfall(core, shape, now)
    if short:
        return f"{short}."
    return (f"no node large enough has been seen; no offers in the last "
            f"{core.nodes.RECENT_SECONDS:g} s.")


def explain(core: SchedulerCore, now: float, note: str | None = None,
            reasons: list[tuple[Shape, int, str]] | None = None) -> str | None:
    """A few sentences on waiting jobs; None when nothing waits and nothing is wrong.
    ``reasons``: what shape_reasons gave at this moment, if the caller has it already."""
    if not core.queue:
        return note
    active = sum(1 for r in core.tasks.values() if r.killed_at is None)
    lines = [f"{_plural(len(core.queue), 'job')} waiting, {active} running."]
    lines.extend(f"{_plural(count, 'job')} of {shape.describe()}: {why}"
                 for shape, count, why in (shape_reasons(core, now) if reasons is None
                                           else reasons))
    nodes = [n for n in core.nodes.nodes.values()
             if not n.lost and not core.nodes.is_ignored(n.agent_id, n.hostname, n.ip)]
    if core.nodes.ignored:
        lines.append("Ignored nodes (no new jobs): " + ", ".join(sorted(core.nodes.ignored))
                     + ".")
    draining = [n.hostname or n.agent_id for n in nodes
                if core.nodes.is_draining(n, now, core.config.drain_window_seconds)]
    if draining:
        lines.append("Draining for maintenance: " + ", ".join(sorted(draining)) + ".")
    if note:
        lines.append(note)
    return " ".join(lines)
