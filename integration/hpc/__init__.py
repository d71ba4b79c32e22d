"""Batch-queue backends (Slurm, Grid Engine, LSF, PBS/Torque, HTCondor).

One base (``base.py``) owns every subprocess, the batched status poll, retries, the
rule for vanished jobs, the job wrapper and kills; each system is a ``Dialect``
(``dialect.py``): pure builders of argument lists and pure parsers of their output.
"""
