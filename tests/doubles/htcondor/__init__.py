"""A test double of HTCondor 23: condor_submit, condor_q, condor_history, condor_rm,
condor_hold, condor_release and condor_status as programs in ``bin/`` (put it first on
PATH), with the schedd's state in ``$FAKE_CONDOR_DIR`` under an fcntl lock and each job
really run by a detached runner (vanilla universe, shared file system: no transfer).

Documentation followed (HTCondor Manual 23.0, htcondor.readthedocs.io/en/23.0):

- "condor_submit" man page and "Submitting a Job": the submit description (``key = value``,
  ``+Attr = value`` custom attributes, ``$(Cluster)``/``$(Process)`` macros, ``queue N``),
  executable, arguments (old and new syntax), output/error/log/input, initialdir, getenv,
  environment, request_cpus, request_memory (MB unless a unit is given), request_disk (KB
  unless a unit is given), request_gpus, hold = true, allowed_job_duration; the output
  "Submitting job(s)." (a dot per job) / "N job(s) submitted to cluster C.", -terse
  "C.0 - C.N-1"; "ERROR: Executable file ... does not exist"; the warning for unused lines.
- "condor_q" and "condor_history" man pages: -json, -constraint, -attributes, job ids as
  cluster or cluster.proc, -limit (condor_history reads newest first); completed and removed
  jobs leave the queue and are found by condor_history.
- "condor_rm" (-reason: the job's RemoveReason, else "via condor_rm (by user U)"),
  "condor_hold" (-reason; "A currently running job that is placed in the hold
  state by condor_hold is sent a hard kill signal"), "condor_release" man pages; messages
  "Job C.P marked for removal", "All jobs in cluster C have been marked for removal",
  "Job C.P not found", "Couldn't find/remove all jobs in cluster C" (exit status 1).
- "ClassAd Job Attributes" (classad-attributes/job-classad-attributes.html): JobStatus
  (1 Idle, 2 Running, 3 Removed, 4 Completed, 5 Held), ExitCode, ExitBySignal, ExitSignal,
  HoldReason, HoldReasonCode (1 UserRequest, 6 FailedToCreateProcess, 15 SubmittedOnHold,
  34 JobOutOfResources "Memory usage exceeds a memory limit", 46 JobDurationExceeded "The
  job's allowed duration was exceeded"), HoldReasonSubCode, EnteredCurrentStatus, RemoteHost,
  LastRemoteHost, RequestCpus/Memory/Disk/GPUs, GlobalJobId.
- "ClassAd Mechanism": the constraint language subset in ``classad.py``.
- "condor_status" (-json): one partitionable slot ad (Cpus, Memory in MB, GPUs, Total*).
- Memory: with cgroup enforcement a job over request_memory is killed and held with code 34
  ("Job has gone over cgroup memory limit of N megabytes. Last measured usage: M megabytes.
  Consider resubmitting with a higher request_memory." -- HTCondor 23's words as sites quote
  them; the manual gives the code, not the text). allowed_job_duration: held with code 46;
  the reason text is this fake's.

Knobs for tests (not HTCondor's): $FAKE_CONDOR_HISTORY_KEEP (seconds condor_history keeps a
job; default forever), $FAKE_CONDOR_KILL_DELAY (condor_rm's SIGTERM to SIGKILL, 10 s),
$FAKE_CONDOR_START_DELAY, $FAKE_CONDOR_NCPUS/_NGPUS/_MEMORY, $FAKE_CONDOR_SCHEDD.
``python -m tests.doubles.htcondor vanish ...`` is the test hook.

Not emulated: file transfer, the user log's events, queue statements other than
``queue [N]``, other universes, several slots/machines, periodic_* policy expressions.
"""

import os

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
