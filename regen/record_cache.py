"""Corpus records read from the database once, not on every report.

A report shows its k nearest corpus ECGs with their stored reports and labels, and leaves out
the query's own record when the query is a corpus file. Both were database reads on every
request, and at one report at a time they cost more than the encoder's forward pass (the ORM
builds each record with its reports and labels). Neighbours repeat across queries, so a
record is read once and kept `ttl_s` seconds: a rebuild that rewrites a record's report is
seen within that time, as before it was seen at once (the vectors served are still those of
the build opened). At most `max_items` records are kept, the least recently used dropped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import select

import db as store

Identity = tuple[int | None, str | None]      # (record id, patient id); (None, None): not a
#                                               corpus file


class RecordCache:
    """`records(ids)` -> {id: RecordView} and `identities(paths)` -> [(id, patient)], each
    entry read from `database` at most once per `ttl_s` (thread-safe: the server's workers
    share one)."""

    def __init__(self, database: store.Database, ttl_s: float = 60.0,
                 max_items: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.db, self.ttl_s, self.max_items, self.clock = database, ttl_s, max_items, clock
        self._records: OrderedDict[int, tuple[float, store.RecordView | None]] = OrderedDict()
        self._paths: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._lock = threading.Lock()

    def records(self, ids: Iterable[int]) -> dict[int, store.RecordView]:
        """The stored records with these ids; ids not stored are absent."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found, missing = self._take(self._records, wanted)
        if missing:
            with self.db.session() as s:
                rows = store.fetch_records(s, missing)
            fresh = {i: rows.get(i) for i in missing}
            self._put(self._records, fresh)
            found.update(fresh)
        return {i: v for i, v in found.items() if v is not None}

    def identities(self, paths: Sequence[str]) -> list[Identity]:
        """(record id, patient id) of the corpus record stored under each path (resolved, as
        `index rebuild` stores them), or (None, None)."""
        found, missing = self._take(self._paths, list(dict.fromkeys(paths)))
        if missing:
            with self.db.session() as s:
                rows = s.execute(select(store.Record.id, store.Record.patient_id,
                                        store.Record.path)
                                 .where(store.Record.path.in_(missing))).all()
            fresh: dict[str, Identity] = {p: (None, None) for p in missing}
            fresh.update({path: (rid, pid) for rid, pid, path in rows})
            self._put(self._paths, fresh)
            found.update(fresh)
        return [found[p] for p in paths]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._paths.clear()

    def _take(self, table: OrderedDict, keys: list) -> tuple[dict, list]:
        """(the entries of `keys` cached and fresh, the keys to read)."""
        now, found, missing = self.clock(), {}, []
        with self._lock:
            for key in keys:
                hit = table.get(key)
                if hit is not None and now - hit[0] < self.ttl_s:
                    table.move_to_end(key)
                    found[key] = hit[1]
                else:
                    missing.append(key)
        return found, missing

    def _put(self, table: OrderedDict, entries: dict) -> None:
        now = self.clock()
        with self._lock:
            for key, value in entries.items():
                table[key] = (now, value)
                table.move_to_end(key)
            while len(table) > self.max_items:
                table.popitem(last=False)


__all__ = ["Identity", "RecordCache"]
