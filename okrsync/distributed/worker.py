"""The Celery app of a worker configured from ``OKRSYNC_*`` environment variables.

``celery -A okrsync.distributed.worker worker -Q okrsync --concurrency=2`` (see
:class:`okrsync.distributed.FleetSettings` for the variables). Integrators who configure in
code write their own two-line module calling :func:`okrsync.distributed.create_app` instead.
"""

from __future__ import annotations

from okrsync.distributed.app import create_app
from okrsync.distributed.settings import FleetSettings

app = create_app(FleetSettings.from_env())
