"""The `mesobatch` command. The only place that configures logging or prints."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple, NoReturn

from ..executor.protocol import log_file_name
from .contract import BatchJobExitReason, InsufficientSystemResources, UpdatedBatchJobInfo
from .core.jobs import InvalidJob
from .job_logs import read_log
from .jobfile import Defaults, JobFileError, JobLine, read_job_file
from .options import (
    ENV_PREFIX,
    CommonOptions,
    OptionError,
    add_arguments,
    default_config_path,
    load_config_file,
    option_fields,
    parse_cores,
    parse_size,
    resolve,
    unknown_option_error,
)
from .registry import UnknownBackend, availability, backend_names, batch_system_class, get_entry
from .run_results import (
    FAR_OVER,
    format_bytes,
    format_records,
    format_used,
    merged,
    over_use,
    rerun_jobs,
    result_record,
    write_atomically,
)
from .status.terminal import announce

log = logging.getLogger("mesobatch")


class CliError(Exception):
    """A one-line error for the user; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def _base_parser(backend: _Backend | None = None) -> tuple[_Parser, _Parser]:
    """The whole command line; ``backend``'s options join ``run``'s, so that ``--help``
    lists them and they may come anywhere (``run --maxCores 2 jobs.txt``)."""
    parser = _Parser(prog="mesobatch", allow_abbrev=False, description="Run batches of jobs on "
                     "the local machine, a Mesos cluster or another backend.")
    from mesobatch import __version__  # noqa: PLC0415

    parser.add_argument("--version", action="version", version=f"mesobatch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", allow_abbrev=False,
                         help="run a file of jobs and wait for all of them",
                         description="Run a file of jobs: one shell command per line, or "
                         "JSON Lines with command, name, cores, memory, disk, env, "
                         "preemptible, gpus, walltime.")
    run.add_argument("jobs", metavar="JOBS", nargs="?",
                     help="the job file (not with --rerun-failed)")
    run.add_argument("--results", default=None, metavar="FILE",
                     help="write one JSON line per job to FILE: the job, its state, exit "
                     "code, wall time, peak memory, CPU time, node and log")
    run.add_argument("--rerun-failed", default=None, metavar="FILE",
                     help="run again the jobs of a --results FILE that did not succeed "
                     "(with --results, the earlier successes are carried over)")
    run.add_argument("--backend", default=None,
                     help=f"where to run (default: local) [env {ENV_PREFIX}BACKEND]")
    run.add_argument("--config", default=None, metavar="FILE",
                     help=f"TOML config file [env {ENV_PREFIX}CONFIG]")
    run.add_argument("--format", default="auto", choices=("auto", "lines", "jsonl"),
                     help="job file format (default: by extension or first line)")
    run.add_argument("--cores", default=None, metavar="N",
                     help="cores per job unless the job says (default: 1)")
    run.add_argument("--memory", default=None, metavar="SIZE",
                     help="memory per job unless the job says (default: 512M)")
    run.add_argument("--disk", default=None, metavar="SIZE",
                     help="disk per job unless the job says (default: 512M)")
    run.add_argument("--no-progress", action="store_true", help="no live progress bar")
    if backend is not None:
        _add_backend_options(run, backend)
    sub.add_parser("backends", help="list the backends and whether each can run here")
    from .status.terminal import add_parser as add_status_parser  # noqa: PLC0415

    add_status_parser(sub)
    from ..deploy.cli import add_parser as add_deploy_parser  # noqa: PLC0415

    add_deploy_parser(sub)
    return parser, run


class _Backend(NamedTuple):
    """The backend ``mesobatch run`` uses, and where that choice came from."""

    name: str
    source: str  #: "" (command line), " (from $MESOBATCH_BACKEND)", ...
    cls: type[Any] | None  #: its batch-system class; None when it cannot be loaded
    error: str | None = None  #: why it cannot be loaded


def _choose_backend(argv: list[str]) -> _Backend:
    """Which backend ``run`` uses: --backend < $MESOBATCH_BACKEND < the config file's
    ``backend`` < local, read before the rest of the command line is parsed."""
    pre = _Parser(add_help=False, allow_abbrev=False)
    pre.add_argument("--backend")
    pre.add_argument("--config")
    try:
        known, _ = pre.parse_known_args(argv)
    except CliError:
        known = argparse.Namespace(backend=None, config=None)
    env_name = ENV_PREFIX + "BACKEND"
    if known.backend:
        name, source = known.backend, ""
    elif os.environ.get(env_name):
        name, source = os.environ[env_name], f" (from ${env_name})"
    else:
        config_path = known.config or default_config_path()
        config = _load_config(config_path)
        name, source = str(config.get("backend", "local")), f" (from {config_path})"
        if "backend" not in config:
            source = ""
    try:
        return _Backend(name, source, batch_system_class(name))
    except UnknownBackend:
        return _Backend(name, source, None, f"unknown backend {name!r}{source}; available: "
                        f"{', '.join(backend_names())}")
    except ImportError as e:
        return _Backend(name, source, None, str(e))


def _add_backend_options(run: argparse.ArgumentParser, backend: _Backend) -> None:
    """The backend's options in two groups: those every backend has, and its own."""
    if backend.cls is None:
        return
    options_class = backend.cls.backend_class.options_class
    common = {m.name for _, m in option_fields(CommonOptions)}
    own = [m.name for _, m in option_fields(options_class) if m.name not in common]
    add_arguments(options_class, run.add_argument_group(
        f"options of every backend (here: {backend.name})"), skip=tuple(own))
    if own:
        add_arguments(options_class, run.add_argument_group(
            f"options of the {backend.name} backend"), skip=tuple(common))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except CliError as e:
        print(f"mesobatch: error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    if argv[:2] == ["deploy", "check-agent"]:  # its options are its own (as in the bundle)
        from ..deploy.cli import check_agent  # noqa: PLC0415

        return check_agent(argv[2:])
    command = next((a for a in argv if not a.startswith("-")), None)
    backend = _choose_backend(argv) if command == "run" else None
    parser, run_parser = _base_parser(backend)
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "backends":
        _no_extra(rest, [])
        return _list_backends()
    if args.command == "run":
        assert backend is not None
        return _run(args, rest, backend, [
            o for a in run_parser._actions for o in a.option_strings if o.startswith("--")])
    if args.command == "status":
        _no_extra(rest, [])
        return _status(args)
    if args.command == "deploy":
        from ..deploy.cli import run as run_deploy  # noqa: PLC0415

        return run_deploy(args, rest)
    parser.print_usage(sys.stderr)
    print("mesobatch: error: say which command (run, status, backends, deploy); "
          "mesobatch --help explains them", file=sys.stderr)
    return 2


def _no_extra(rest: list[str], allowed: list[str]) -> None:
    for arg in rest:
        if arg.startswith("-"):
            raise CliError(str(unknown_option_error(arg.split("=")[0], allowed, "")))
        raise CliError(f"unexpected argument {arg!r}")


def _list_backends() -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table("backend", "usable here", "what it is", box=None)
    for name in backend_names():
        ok, why = availability(name)
        # plain text: "pip install 'mesobatch[aws]'" is not markup
        table.add_row(name, "yes" if ok else escape(f"no: {why}"),
                      escape(get_entry(name).summary))
    Console().print(table)
    return 0


def _run(args: argparse.Namespace, rest: list[str], backend: _Backend,
         allowed: list[str]) -> int:
    _no_extra(rest, allowed)
    if backend.cls is None:
        raise CliError(backend.error or f"backend {backend.name!r} cannot be loaded")
    cls = backend.cls
    config_path = args.config or default_config_path()
    config = _load_config(config_path)
    options_class = cls.backend_class.options_class
    values = {dest: getattr(args, dest, None) for dest, _ in option_fields(options_class)}
    try:
        options = resolve(options_class, values, backend=backend.name, config=config,
                          config_path=str(config_path))
        if options.log_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            options = replace(options, log_dir=os.path.abspath(f"mesobatch-logs/{stamp}"))
        if options.status_port is None:  # a run serves its status page unless told not to
            options = replace(options, status_port=0)
        defaults = _defaults(args)
    except OptionError as e:
        raise CliError(str(e)) from None
    jobs, kept = _read_jobs(args, defaults)
    if not jobs:
        print(f"nothing to run again: every job in {args.rerun_failed} succeeded",
              file=sys.stderr)
        if args.results:
            _write_results(args.results, kept, [])
        return 0
    try:
        bs = cls(options=options)
    except (OptionError, OSError, ValueError) as e:
        raise CliError(str(e)) from None
    with _Stop() as stop:  # through shutdown: a signal there must not break it off
        try:
            _validate_jobs(bs, jobs, args)
            with announce(bs.status_url):
                return _run_jobs(bs, jobs, args, stop, kept)
        finally:
            bs.shutdown()
            _remove_if_empty(bs.log_dir)


def _status(args: argparse.Namespace) -> int:
    from .status.terminal import StatusError, run  # noqa: PLC0415

    try:
        return run(args)
    except StatusError as e:
        print(f"mesobatch status: {e}", file=sys.stderr)
        return 1


def _existing_log(log_dir: str, job_id: int, job: JobLine) -> str | None:
    path = os.path.join(log_dir, log_file_name(job_id, job.name))
    return path if os.path.exists(path) else None


def _remove_if_empty(log_dir: str) -> None:
    """A run that issued nothing leaves no empty log directories behind."""
    for path in (log_dir, os.path.dirname(log_dir)):
        try:
            os.rmdir(path)
        except OSError:
            return


def _load_config(path: Any) -> dict[str, Any]:
    try:
        return load_config_file(path)
    except OptionError as e:
        raise CliError(str(e)) from None


def _defaults(args: argparse.Namespace) -> Defaults:
    d = Defaults()
    try:
        cores = d.cores if args.cores is None else parse_cores(args.cores)
    except ValueError as e:
        raise OptionError(f"invalid value {args.cores!r} for --cores: {e}") from None
    sizes = {}
    for key in ("memory", "disk"):
        value = getattr(args, key)
        try:
            sizes[key] = getattr(d, key) if value is None else parse_size(value)
        except ValueError as e:
            raise OptionError(f"invalid value {value!r} for --{key}: {e}") from None
    return Defaults(cores, sizes["memory"], sizes["disk"])


def _validate_jobs(bs: Any, jobs: list[JobLine], args: argparse.Namespace) -> None:
    for job in jobs:
        try:
            bs.validate_job(job.command, job, job.env)
        except (InsufficientSystemResources, InvalidJob) as e:
            raise CliError(f"{args.jobs or args.rerun_failed}:{job.line}: {e}") from None


def _read_jobs(args: argparse.Namespace, defaults: Defaults
               ) -> tuple[list[JobLine], list[dict[str, Any]]]:
    """The jobs to run, from the job file or (--rerun-failed) those of a results file
    that did not succeed, with the records of those that did."""
    if (args.jobs is None) == (args.rerun_failed is None):
        raise CliError("give a job file (JOBS) or --rerun-failed RESULTS, not both" if args.jobs
                       else "give a job file (JOBS), or --rerun-failed RESULTS to run again "
                       "the jobs of an earlier run that did not succeed")
    try:
        if args.jobs is not None:
            return read_job_file(args.jobs, defaults, args.format), []
        try:
            with open(args.rerun_failed, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise CliError(f"cannot read results file {args.rerun_failed!r}: {why}") from None
        rerun = rerun_jobs(text, args.rerun_failed)
        return rerun.jobs, rerun.kept
    except JobFileError as e:
        raise CliError(str(e)) from None


def _write_results(path: str, kept: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    try:
        write_atomically(path, format_records(merged(kept, new)))
    except OSError as e:
        print(f"mesobatch: cannot write results to {path!r}: {e.strerror}", file=sys.stderr)
        return
    print(f"results: {path}", file=sys.stderr)


def _run_jobs(bs: Any, jobs: list[JobLine], args: argparse.Namespace, stop: _Stop,
              kept: list[dict[str, Any]]) -> int:
    started = time.monotonic()
    ids = bs.issue_many([(j.command, j, j.env) for j in jobs])
    by_id = dict(zip(ids, jobs, strict=True))
    results: dict[int, UpdatedBatchJobInfo] = {}
    with _Progress(len(jobs), enabled=not args.no_progress) as progress:
        while len(results) < len(jobs) and stop.signum is None:
            info = bs.getUpdatedBatchJob(0.2)
            if info is not None:
                results[info.jobID] = info
            progress.update(results, len(bs.getRunningBatchJobIDs()))
            fatal = bs.fatal_error()
            if fatal:
                raise CliError(fatal)
    if stop.signum is not None:
        _kill_unfinished(bs, [i for i in ids if i not in results], stop)
    elapsed = time.monotonic() - started
    _summary(by_id, results, elapsed, bs.log_dir)
    print(f"job logs: {bs.log_dir}", file=sys.stderr)
    if args.results:
        _write_results(args.results, kept, [
            result_record(job, results.get(job_id), _existing_log(bs.log_dir, job_id, job))
            for job_id, job in by_id.items()])
    if stop.signum is not None:
        print("interrupted: unfinished jobs were killed", file=sys.stderr)
        return 128 + stop.signum  # 130 for Ctrl-C, 143 for SIGTERM
    return 0 if all(r.exitStatus == 0 and r.exitReason == BatchJobExitReason.FINISHED
                    for r in results.values()) else 1


class _Stop:
    """Ctrl-C and SIGTERM during a run: the first stops it (unfinished jobs are killed,
    with the kill grace period), a second one skips the grace period; the summary comes
    either way. The handler only takes note (the run's loop looks every 0.2 s), so no
    exception breaks off whatever the signal came in the middle of."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.hurry = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handler(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        else:
            self.hurry.set()


def _kill_unfinished(bs: Any, job_ids: list[int], stop: _Stop) -> None:
    """Kill jobs from a thread of its own, so that this thread only waits: a second
    signal skips the grace period instead of breaking the kill off half way."""
    print("stopping: killing the unfinished jobs (interrupt again to skip the "
          f"{bs.options.kill_grace_period:g} s grace period)", file=sys.stderr)
    killer = threading.Thread(target=bs.killBatchJobs, args=(job_ids,),
                              name="mesobatch-kill", daemon=True)
    killer.start()
    hurried = False
    while killer.is_alive():
        if stop.hurry.wait(0.1) and not hurried:
            hurried = True
            bs.kill_now()
    killer.join()


class _Progress:
    """A live bar on a terminal; nothing otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

        self.total = total
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]jobs"), BarColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self._task = self._progress.add_task("jobs", total=total, stats="")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.stop()

    def update(self, results: dict[int, UpdatedBatchJobInfo], running: int) -> None:
        if not self.enabled:
            return
        failed = sum(1 for r in results.values() if r.exitStatus != 0)
        done = len(results) - failed
        queued = self.total - len(results) - running
        self._progress.update(self._task, completed=len(results), stats=(
            f"done {done}  failed {failed}  running {running}  queued {max(queued, 0)}"))


def _summary(jobs: dict[int, JobLine], results: dict[int, UpdatedBatchJobInfo],
             elapsed: float, log_dir: str | None) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    ok = [r for r in results.values() if r.exitStatus == 0 and
          r.exitReason == BatchJobExitReason.FINISHED]
    bad = [r for r in results.values() if r not in ok]
    unfinished = len(jobs) - len(results)
    # into a file or a pipe: lines as long as the table needs, never cut short
    console = Console() if sys.stdout.isatty() else Console(width=200)
    totals = Table("outcome", "jobs", box=None)
    totals.add_row("succeeded", str(len(ok)))
    totals.add_row("failed", str(len(bad)))
    if unfinished:
        totals.add_row("not finished", str(unfinished))
    totals.add_row("elapsed", f"{elapsed:.2f} s")
    totals.add_row("jobs/s", f"{len(results) / elapsed:.1f}" if elapsed > 0 else "-")
    console.print(totals)
    # all of a small batch; of a large one the failed jobs, then those far over their ask
    shown = list(results.values()) if len(jobs) <= 20 else (bad + [
        r for r in ok if over_use(jobs[r.jobID], r)])[:20]
    if shown:
        measured = any(r.usage is not None and (r.usage.peak_memory is not None or
                                                r.usage.memory_at_most is not None)
                       for r in shown)
        table = Table("line", "name", "result", "exit", "wall s", *(
            ["mem/asked", "cpu s", "over"] if measured else []), *(
            ["log"] if log_dir else []), box=None)
        for r in sorted(shown, key=lambda r: jobs[r.jobID].line):
            job = jobs[r.jobID]
            outcome = r.exitReason.name.lower() if r.exitReason else "?"
            row = [str(job.line), job.name, outcome, str(r.exitStatus),
                   f"{r.wallTime:.2f}" if r.wallTime is not None else "-"]
            if measured:
                cpu = r.usage.cpu_time if r.usage is not None else None
                row += [f"{format_used(r.usage)}/{format_bytes(job.memory)}",
                        f"{cpu:.2f}" if cpu is not None else "-",
                        ", ".join(over_use(job, r)) or "-"]
            if log_dir:
                name = log_file_name(r.jobID, job.name)
                row.append(name if os.path.exists(os.path.join(log_dir, name)) else "-")
            table.add_row(*row)
        console.print(table)
        if len(bad) > len(shown):
            console.print(f"... and {len(bad) - len(shown)} more failed jobs")
        if any(over_use(jobs[r.jobID], r) for r in shown):
            console.print(f"over: the job used over {FAR_OVER:g} times the memory it asked "
                          "for, or CPU time per second over its cores that many times")
    if log_dir:
        _failed_tails(console, jobs, bad, log_dir)


#: failed jobs whose last lines the summary shows, and how many lines of each
_TAILS_SHOWN, _TAIL_LINES = 5, 5


def _failed_tails(console: Any, jobs: dict[int, JobLine],
                  bad: list[UpdatedBatchJobInfo], log_dir: str) -> None:
    """The last lines of the first failed jobs' logs (those that have one)."""
    from rich.markup import escape  # noqa: PLC0415

    for r in sorted(bad, key=lambda r: jobs[r.jobID].line)[:_TAILS_SHOWN]:
        tail = read_log(log_dir, r.jobID, _TAIL_LINES)
        if tail:
            job = jobs[r.jobID]
            console.print(f"[bold]line {job.line} ({escape(job.name)}), last lines:[/bold]")
            console.print(escape(tail), highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
