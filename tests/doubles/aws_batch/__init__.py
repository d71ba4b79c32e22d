"""A test double of AWS Batch (REST-JSON API as boto3 speaks it) and CloudWatch Logs'
GetLogEvents, running each job as a local process with the real state machine.

It never imports mesobatch. See ``AwsBatchDouble`` and README.md.
"""

from .double import AwsBatchDouble

__all__ = ["AwsBatchDouble"]
