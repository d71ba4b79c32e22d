"""AWS Batch as an offer-emulating backend.

``options.py`` holds the typed options; ``requests.py`` builds every request (pure);
``status.py`` reads DescribeJobs' JobDetail into task states (pure); ``calls.py`` is the
one place boto3 is called (throttling retried with backoff, calls counted); ``logs.py``
copies a job's CloudWatch log stream into --logDir; ``backend.py`` carries the core's
actions out with a submitter and a poller thread.
"""
