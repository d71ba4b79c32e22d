"""Toil's entry to mesobatch: Toil imports every top-level module whose name starts with
``toil_batch_system_``, and this one registers ``--batchSystem mesos`` (replacing Toil's
own Mesos backend, which does not install on Python 3.11+) and ``mesobatch_<backend>``
for each other mesobatch backend (``mesobatch_local``, ...).

The code lives in ``mesobatch.integration.toil_plugin``.
"""

from mesobatch.integration.toil_plugin import register

register()
