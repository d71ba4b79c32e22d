"""What the LSF, PBS/Torque and HTCondor fakes share: a job store in one file under a lock,
and a detached runner per job that really runs it and enforces its limits.

The fakes never import mesobatch. Each system's package (``tests/doubles/lsf``, ``pbs``,
``htcondor``) keeps its own formats, messages and exit statuses; this package only knows
generic job facts (pending, held, running, finished; exit status or signal; why it was
killed), which each system turns into its own words.
"""
