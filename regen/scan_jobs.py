"""Scan jobs for `regen serve`: a long record's scan runs in the server's worker pool while the
client polls `GET /v1/scan/{job_id}` for its progress and, once done, its result.

Jobs live in the server's memory: a finished job (done or failed) is kept `ttl_s` seconds and
then forgotten (404); at most `max_jobs` are queued or running at once. Ids are random
(128 bits), so one client cannot guess another's job.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread

from regen.errors import RegenError, TooManyJobs

log = logging.getLogger("regen.server")
Progress = Callable[[int, int], None]      # (windows done, windows in all)


@dataclass
class Job:
    """One scan job. status: "queued" | "running" | "done" | "failed". result: the answer's
    JSON bytes once done; error: one line once failed."""

    id: str
    created_s: float
    status: str = "queued"
    done: int = 0
    total: int = 0
    result: bytes | None = None
    error: str | None = None
    finished_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self) -> float:
        """Fraction of the windows scanned, 0..1."""
        if self.status == "done":
            return 1.0
        return round(self.done / self.total, 4) if self.total else 0.0

    def update(self, done: int, total: int) -> None:
        with self._lock:
            self.status, self.done, self.total = "running", done, total

    def to_json_bytes(self) -> bytes:
        """{"job_id", "status", "progress", "windows_done", "windows"} + "result" (the scan's
        JSON, as sent by POST /v1/scan) when done, "error" when failed."""
        import json

        head = {"job_id": self.id, "status": self.status, "progress": self.progress(),
                "windows_done": self.done, "windows": self.total}
        if self.status == "failed":
            head["error"] = self.error
        body = json.dumps(head).encode()
        if self.status == "done" and self.result is not None:
            body = body[:-1] + b', "result": ' + self.result + b"}"
        return body


class ScanJobs:
    """The server's scan jobs, run with `limiter` (the worker pool's) on the event loop that
    calls `submit`. clean: what a failed job's error becomes before a client sees it (paths,
    secrets). clock: seconds (time.monotonic)."""

    def __init__(self, limiter: anyio.CapacityLimiter, ttl_s: float, max_jobs: int,
                 clean: Callable[[str], str] = str, clock: Callable[[], float] = time.monotonic):
        self.limiter, self.ttl_s, self.max_jobs = limiter, ttl_s, max_jobs
        self.clean, self.clock = clean, clock
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def expire(self) -> None:
        now = self.clock()
        for k in [k for k, j in self._jobs.items()
                  if j.finished_s is not None and now - j.finished_s > self.ttl_s]:
            del self._jobs[k]

    def get(self, job_id: str) -> Job | None:
        self.expire()
        return self._jobs.get(job_id)

    def submit(self, work: Callable[[Progress], bytes]) -> Job:
        """Start `work(on_progress) -> answer bytes` in the pool; the job, queued. Raises
        TooManyJobs when max_jobs are queued or running."""
        self.expire()
        active = sum(j.finished_s is None for j in self._jobs.values())
        if active >= self.max_jobs:
            raise TooManyJobs(f"{active} scan jobs are queued or running (setting "
                              f"scan_max_jobs={self.max_jobs}); retry when one has finished")
        job = Job(secrets.token_urlsafe(16), self.clock())
        self._jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, work))
        self._tasks.add(task)                  # a reference, so the task is not collected
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, work: Callable[[Progress], bytes]) -> None:
        def go() -> bytes:          # in a worker thread, once the pool has room
            job.status = "running"
            return work(job.update)

        try:
            result = await anyio.to_thread.run_sync(go, limiter=self.limiter)
            job.result, job.status = result, "done"
        except RegenError as exc:
            job.error, job.status = self.clean(str(exc)), "failed"
        except Exception as exc:  # noqa: BLE001 - the client gets a line, the log the detail
            log.error("scan job %s failed: %r", job.id, exc)
            job.error, job.status = "internal error; the server's log has the details", "failed"
        job.finished_s = self.clock()


__all__ = ["Job", "ScanJobs"]
