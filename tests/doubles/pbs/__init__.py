"""A test double of OpenPBS / PBS Professional 2023 and of Torque 6: qsub, qstat, qdel,
qhold, qrls and pbsnodes as programs in ``bin/`` (put it first on PATH: Grid Engine's
qsub/qstat/qdel may be installed too), with the state in ``$FAKE_PBS_DIR`` under an fcntl
lock and each job really run by a detached runner. ``$FAKE_PBS_FLAVOR`` picks the dialect:
``pbspro`` (default) or ``torque``.

Documentation followed:

- Altair PBS Professional Reference Guide 2024.1 (https://help.altair.com/2024.1.0/PBS%20
  Professional/PBSReferenceGuide2024.1.pdf), "qsub" (-l select=1:ncpus=N:mem=M, walltime,
  -J X-Y arrays with PBS_ARRAY_INDEX, -N, -q, -A, -o/-e/-j oe, -h, -V, -v; prints
  "123.server", "123[].server" for arrays), "qstat" (-f, -F json, -x and -H for job
  history, -t for subjobs; "qstat: Unknown Job Id 123.server"; "Job has finished, use -x or
  -H to obtain historical job information"), "qdel", "qhold"/"qrls", "pbsnodes -av -F json",
  job states (Q, H, R, E, F, B for begun arrays, X for finished subjobs), and Table 11-2
  "Job Exit Codes": negative Exit_status values set by PBS (JOB_EXEC_FAIL1 -1 ... -20
  JOB_EXEC_RERUN_MS_FAIL, -24..-29 JOB_EXEC_KILL_NCPUS_BURST/SUM, VMEM, MEM (-27), CPUT,
  WALLTIME (-29)); exit status > 256 when the job's top process died of signal X-256 (qdel of
  a running job: SIGTERM, kill_delay, SIGKILL: Exit_status 271).
- The PBS Pro JSON layout of qstat -f -F json and pbsnodes -av -F json (timestamp,
  pbs_version, pbs_server, then "Jobs" / "nodes"), as in the OpenPBS design page "PP-483:
  Enhance output of qstat to make it more admin and script friendly"
  (pbspro.atlassian.net/wiki/display/PD/PP-483...).
- PBS error numbers (pbs_error.h) as exit statuses modulo 256: PBSE_UNKJOBID 15001 -> 153,
  PBSE_HISTJOBID 15139 -> 35, PBSE_UNKQUE 15018 -> 170, PBSE_UNKRESC 15025 -> 177,
  PBSE_BADATVAL 15014 -> 166.
- Torque 6 Administrator Guide (docs.adaptivecomputing.com/torque/6-1-x/adminGuide): "qsub"
  (-l nodes=1:ppn=N,mem=M,walltime=T, -t arrays with PBS_ARRAYID, -d working directory),
  "qstat" (-f -x: XML, <Data><Job>...</Job></Data>; completed jobs in state C for the
  server's keep_completed seconds; "qstat: Unknown Job Id Error 123.server"), "Job Exit
  Status" (Torque supplied exit codes: -1..-9, -10 "Job exceeded a memory limit", -11 "Job
  exceeded a walltime limit", -12 CPU time, -13 cgroups, -14 prologue; from the Adaptive
  Computing knowledge base article for 6.1.2), "pbsnodes -x".
- The mom's kill message "=>> PBS: job killed: walltime N exceeded limit M" (and mem) at
  the end of the job's error file.

Knobs for tests (not PBS's): $FAKE_PBS_SERVER (server name, default the host's short name),
$FAKE_PBS_QUEUES (first is the default: workq / batch), $FAKE_PBS_JOB_HISTORY_ENABLE (PBS
Pro job_history_enable; the real default is False, this fake's True), $FAKE_PBS_JOB_HISTORY_
DURATION (two weeks), $FAKE_PBS_KEEP_COMPLETED (Torque keep_completed, 300 s),
$FAKE_PBS_KILL_DELAY (kill_delay, 10 s), $FAKE_PBS_START_DELAY, $FAKE_PBS_NCPUS/_NGPUS/
_MEMORY. ``python -m tests.doubles.pbs vanish|terminate ...`` are the test hooks.

Not emulated: several execution hosts, staging, qalter, qrerun, accounting logs, tracejob.
"""

import os

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
