"""mesobatch's options as Toil command-line options and Config attributes.

Toil builds one parser holding the options of every registered batch system, and one
Config whose attributes are the parsed values by ``dest``. Our options keep their
spellings (``--mesosMaster``, ``--mesosRole``, ...); their dests must be unique in
Toil's parser, so the ``mesos_*`` fields keep their names (Toil's own: existing
configs and scripts that set ``mesos_endpoint`` keep working) and every other field
gets a ``mesobatch_`` prefix (cwltool's ``--log-dir`` already owns ``log_dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..scheduler.options import CommonOptions, OptionMeta, option_fields

log = logging.getLogger(__name__)

#: Options Toil defines itself: it passes them to the batch system's constructor, or
#: keeps them in its Config under our field's name (``max_jobs`` for ``--maxJobs``).
TOIL_OWN_OPTIONS = frozenset({"maxCores", "maxMemory", "maxDisk", "maxJobs"})

#: Fields named as the dests of Toil's own batch systems' options of the same spelling
#: (its aws_batch's --awsBatchRegion, ...; its slurm's --slurmPartition, ...): whichever
#: batch system adds the option first, the value lands where both read it.
TOIL_SHARED_DESTS = frozenset({"aws_batch_region", "aws_batch_queue",
                               "aws_batch_job_role_arn",
                               # its slurm's --slurmPartition, --slurmGPUPartition, --slurmQOS
                               "slurm_partition", "slurm_gpu_partition", "slurm_qos"})


def toil_dest(dest: str) -> str:
    """The Config attribute that holds option ``dest`` in Toil."""
    return dest if dest.startswith("mesos_") or dest in TOIL_SHARED_DESTS \
        else f"mesobatch_{dest}"


def toil_option_fields(options_class: type[CommonOptions]) -> list[tuple[str, OptionMeta]]:
    """The options a backend adds to Toil's parser: all but Toil's own."""
    return [(dest, meta) for dest, meta in option_fields(options_class)
            if meta.name not in TOIL_OWN_OPTIONS]


def _argparse_type(meta: OptionMeta) -> Callable[[str], Any]:
    """Parse at argument time, so Toil rejects a bad value with its usage message."""

    def convert(text: str) -> Any:
        try:
            return meta.parse(text)
        except (ValueError, TypeError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = meta.name
    return convert


def add_toil_arguments(options_class: type[CommonOptions], backend: str,
                       parser: argparse.ArgumentParser | Any) -> None:
    """Add a backend's options to Toil's parser.

    Toil calls this for every registered batch system on the same parser, so options
    that several mesobatch backends share (``--logDir``) are added once: spellings
    already present are left alone. Defaults stay None: an option the user did not
    give falls through to mesobatch's own resolution (config file, environment,
    default) when the batch system is made.
    """
    # argparse keeps no public index of option strings; this mapping is stable and
    # is shared by a parser and its argument groups.
    taken: dict[str, argparse.Action] = getattr(parser, "_option_string_actions", {})
    common = {f.name for f in dataclasses.fields(CommonOptions)}
    for dest, meta in toil_option_fields(options_class):
        ours = toil_dest(dest)
        spellings = [f"--{name}" for name in (meta.name, *meta.aliases)]
        free = [s for s in spellings if s not in taken]
        for s in spellings:
            if s in taken and taken[s].dest != ours:
                log.warning("Toil already has an option %s (for %s); mesobatch's %s is "
                            "not added", s, taken[s].dest, s)
        if not free:
            continue
        help_text = (f"{meta.help} [mesobatch{'' if dest in common else ' ' + backend}; "
                     f"env {meta.env}]")
        if meta.flag:  # --enforceMemory: no value, as on mesobatch's own command line
            parser.add_argument(*free, dest=ours, default=None, action="store_const",
                                const=True, help=help_text)
            continue
        parser.add_argument(
            *free, dest=ours, default=None, type=_argparse_type(meta), metavar=meta.metavar,
            help=help_text,
        )


def set_toil_options(options_class: type[CommonOptions],
                     set_option: Callable[..., Any]) -> None:
    """Toil's setOptions hook: copy each of our parsed options into its Config."""
    for dest, _ in toil_option_fields(options_class):
        set_option(toil_dest(dest))


def arguments_from_config(options_class: type[CommonOptions], config: Any) -> dict[str, Any]:
    """The options a Toil Config sets, keyed by dest (what ``resolve`` accepts)."""
    out: dict[str, Any] = {}
    for dest, _ in toil_option_fields(options_class):
        value = getattr(config, toil_dest(dest), None)
        if value is not None:
            out[dest] = value
    return out
