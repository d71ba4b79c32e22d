"""A test double of IBM Spectrum LSF 10.1: bsub, bjobs, bkill, bstop, bresume, bhosts,
lshosts and lsid as programs in ``bin/`` (put it first on PATH), with the cluster's state in
``$FAKE_LSF_DIR`` under an fcntl lock and each job really run by a detached runner.

Documentation followed (IBM Documentation, "IBM Spectrum LSF 10.1.0"):

- Command reference, bsub and its options: "bsub", "-J" (job arrays ``name[1-N]``, %J/%I in
  file names), "-n", "-R" (rusage[mem=...], span[hosts=1]), "-M" ("By default, the limit is
  specified in KB. Use the LSF_UNIT_FOR_LIMITS parameter ... to specify a larger unit",
  units KB..ZB), "-W" ([hour:]minute), "-q", "-P", "-gpu", "-o/-e/-oo/-eo", "-cwd", "-H";
  https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_command_ref/bsub.__m.1.html and siblings.
- "bjobs -o" (custom fields, delimiter) and "bjobs -json" ("Displays the customized output in
  JSON format"; only with -o, not with -noheader): lsf_command_ref/bjobs.o.1.html,
  bjobs.json.1.html; the record layout ({"COMMAND":"bjobs","JOBS":n,"RECORDS":[{...}]},
  string values, "EXIT_CODE":"" for DONE) as bjobs prints it.
- "LSB_BJOBS_CONSISTENT_EXIT_CODE" (lsf_config_ref/lsf.conf.lsb_bjobs_consistent_exit_code.5):
  "Job <123> is not found", "No unfinished job found"; with the default (N) bjobs exits 255
  only when no job ID given is valid.
- "Termination reasons displayed by bacct, bhist, and bjobs"
  (lsf_admin/termination_reasons_lsf.html): TERM_* keywords and their texts.
- "lsf.conf: LSF_UNIT_FOR_LIMITS" (lsf_config_ref/lsf.conf.lsf_unit_for_limits.5): the unit
  of -M and of rusage mem; read from $LSF_UNIT_FOR_LIMITS or $LSF_ENVDIR/lsf.conf (default KB
  for -M, MB for rusage mem, as the docs give).
- "LSB_JOB_MEMLIMIT" (lsf.conf.lsb_job_memlimit.5): the per-job limit enforced by LSF, "SIGINT,
  SIGTERM, then SIGKILL", JOB_TERMINATE_INTERVAL apart ($FAKE_LSF_TERMINATE_INTERVAL, 10 s).
- "Kill jobs" (lsf_admin/job_kill_about.html): bkill sends SIGINT, SIGTERM, SIGKILL;
  bkill's "Job <123> is being terminated", "Job <123>: Job has already finished",
  "Job <123>: No matching job found".
- "Host status" (lsf_admin/host_status_lsf.html): bhosts' columns and states; "bhosts",
  "lshosts" (-o/-json) command pages; "lsid".
- Run limit: a job past -W gets SIGUSR2 first (exit code 140 = 128 + SIGUSR2, as bjobs -l
  shows "Exited with exit code 140" with TERM_RUNLIMIT), then the terminate sequence.

Knobs for tests (not LSF's): $FAKE_LSF_CLEAN_PERIOD (CLEAN_PERIOD, default 3600 s: how long
finished jobs stay in bjobs), $FAKE_LSF_SECONDS_PER_MINUTE (default 60: lets -W 1 mean one
second), $FAKE_LSF_START_DELAY (seconds a job stays PEND), $FAKE_LSF_NCPUS/_NGPUS/_MEMORY
(the one host's size), $FAKE_LSF_QUEUES (comma list, the first is the default queue),
$FAKE_LSF_CLUSTER. ``python -m tests.doubles.lsf vanish|terminate ...`` are the test hooks.

Not emulated: the job report LSF appends to the -o file, mail, bhist/bacct, -I interactive
jobs, multiple hosts.
"""

import os

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
