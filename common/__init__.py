"""Code the scheduler and the executor both use, owned by neither: the HTTP transport
for the Mesos v1 APIs and its RecordIO framing. Standard library only (it ships in the
executor bundle); it imports nothing from mesobatch's other folders."""
