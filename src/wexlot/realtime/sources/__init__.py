"""Change sources, one per backend, all implementing :class:`wexlot.realtime.change.ChangeSource`.

* :mod:`.sqlite` tails the trigger-filled ``wexlot_changes`` log (:class:`SqliteChangeSource`).
* :mod:`.postgres` reads PostgreSQL logical replication (imported on its own: it needs asyncpg).
"""

from wexlot.realtime.sources.sqlite import SqliteChangeSource

__all__ = ["SqliteChangeSource"]
