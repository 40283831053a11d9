"""Report requests that arrive together are computed together: one encoder forward pass, one
index search and one log transaction for the batch (`Regen.reports`), which is where a report's
CPU time goes. A batch starts when a worker is free, so under load the waiting requests form
larger batches; alone, a request waits `wait_s` (a few ms) for company.

Each request still gets its own answer or its own error: a batch that raises is recomputed one
report at a time, so one bad ECG never fails its neighbours in the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from regen.api import EcgLike, Regen
from regen.types import Report


@dataclass
class _Job:
    ecg: EcgLike
    k: int | None
    future: asyncio.Future = field(repr=False)


class ReportBatcher:
    """`await batcher.report(ecg, k)` -> `finish(report)` (computed in the worker thread;
    default `Report.to_json`); at most `limiter`'s tokens of
    batches (or other work sharing the limiter) compute at once, `max_batch` reports each."""

    def __init__(self, rg: Regen, limiter: anyio.CapacityLimiter,
                 finish: Callable[[Report], Any] = Report.to_json, *, max_batch: int = 16,
                 wait_s: float = 0.003):
        self.rg = rg
        self.finish = finish
        self.limiter = limiter
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queue: list[_Job] = []
        self._dispatching = False
        self._tasks: set[asyncio.Task] = set()

    async def report(self, ecg: EcgLike, k: int | None) -> Any:
        loop = asyncio.get_running_loop()
        job = _Job(ecg, k, loop.create_future())
        self._queue.append(job)
        if not self._dispatching:
            self._dispatching = True
            loop.call_later(self.wait_s, self._spawn, self._dispatch)
        return await job.future

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        task = asyncio.get_running_loop().create_task(fn(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self) -> None:
        """Start a batch each time a worker is free, while requests wait."""
        while True:
            self._queue = [j for j in self._queue if not j.future.done()]   # timed out: gone
            if not self._queue:
                self._dispatching = False
                return
            token = object()
            await self.limiter.acquire_on_behalf_of(token)
            k = self._queue[0].k if self._queue else None
            batch = [j for j in self._queue if j.k == k][:self.max_batch]
            if not batch:
                self.limiter.release_on_behalf_of(token)
                continue
            self._queue = [j for j in self._queue if j not in batch]
            self._spawn(self._run, batch, token)

    async def _run(self, batch: list[_Job], token: object) -> None:
        try:
            results = await anyio.to_thread.run_sync(self._compute, batch)
        except BaseException as exc:     # noqa: BLE001 - each waiting request gets it
            results = [exc] * len(batch)
        finally:
            self.limiter.release_on_behalf_of(token)
        for job, res in zip(batch, results):
            if job.future.done():        # its request timed out and left
                continue
            if isinstance(res, BaseException):
                job.future.set_exception(res)
            else:
                job.future.set_result(res)

    def _compute(self, batch: list[_Job]) -> list[Any]:
        k = batch[0].k
        try:
            return [self.finish(r) for r in self.rg.reports([j.ecg for j in batch], k, log=True)]
        except Exception:  # noqa: BLE001 - find whose ECG it was: one at a time
            if len(batch) == 1:
                raise
        out: list[Any] = []
        for j in batch:
            try:
                out.append(self.finish(self.rg.report(j.ecg, k, log=True)))
            except Exception as exc:  # noqa: BLE001 - that request's own error
                out.append(exc)
        return out
