"""The worker process pool: CPU-heavy work (PDF rendering, xlsx import and export, archive
packages, bulk imports) runs here, never on the event loop the gateway shares with the API
(DESIGN.md, "Event loop hygiene").

:class:`WorkerPool` wraps :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn``
start method (a forked child would inherit the loop, sockets and threads of the hub). A job is a
module-level function and picklable arguments; its return value comes back pickled, and an
exception the function raises is re-raised unchanged by :meth:`WorkerPool.run`, so services
translate their own errors as usual.

A process pool breaks as a whole when one worker dies (killed, out of memory, crashed): every
job in flight fails. The pool then replaces the executor, and the affected calls raise
:class:`WorkerCrashed`; the next job runs on fresh workers.

Errors::

    WorkerError            worker_error
    ├── WorkerCrashed      worker_crashed      a worker died while the job was queued or running
    ├── WorkerTimeout      worker_timeout      the job ran past its timeout; its worker was stopped
    └── WorkerPoolClosed   worker_pool_closed  the pool is not started, or stopped
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Literal, Self, TypeVar, TypeVarTuple

import structlog

log = structlog.get_logger("hub.services.workers")

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

StartMethod = Literal["spawn", "forkserver"]


class WorkerError(Exception):
    code = "worker_error"


class WorkerCrashed(WorkerError):
    code = "worker_crashed"


class WorkerTimeout(WorkerError):
    code = "worker_timeout"


class WorkerPoolClosed(WorkerError):
    code = "worker_pool_closed"


def _noop() -> None:
    """Run once per worker at start-up, so that spawning happens before the first job."""


class WorkerPool:
    """A pool of ``processes`` worker processes for CPU-heavy jobs.

    Use ``async with WorkerPool(n) as pool`` or :meth:`start` / :meth:`stop`, then
    ``await pool.run(fn, *args, timeout=…)``.

    Args:
        processes: number of worker processes (``Settings.worker_processes``), at least 1.
        start_method: ``"spawn"`` (default) or ``"forkserver"``; never ``"fork"``.
        max_tasks_per_child: replace a worker after that many jobs (bounds leaks in
            native libraries); None keeps workers for the pool's lifetime.
        on_demand: the first :meth:`run` starts a pool that was never started (a stopped
            pool stays stopped).
    """

    def __init__(
        self,
        processes: int,
        *,
        start_method: StartMethod = "spawn",
        max_tasks_per_child: int | None = None,
        on_demand: bool = False,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self.processes = processes
        self._context = multiprocessing.get_context(start_method)
        self._max_tasks_per_child = max_tasks_per_child
        self._executor: ProcessPoolExecutor | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._on_demand = on_demand
        self._starting = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._executor is not None

    def pids(self) -> list[int]:
        """Process ids of the current workers (for health reports and tests)."""
        if self._executor is None:
            return []
        return [p.pid for p in _processes_of(self._executor) if p.pid is not None]

    async def start(self) -> None:
        """Start the workers and wait until each has come up. A started pool is left alone.

        Raises:
            WorkerError: a worker could not start (for example, an import fails in it).
        """
        if self._executor is not None:
            return
        if self._stopping is not None:
            # Restart after stop(): let a stop still in progress finish first.
            await asyncio.shield(self._stopping)
            self._stopping = None
        executor = self._new_executor()
        self._executor = executor
        try:
            # Spawning is a fork-exec plus pipe writes per worker: done in a thread, not on
            # the loop, and all workers at once so that the first jobs don't pay for it.
            await asyncio.to_thread(_warm_up, executor, self.processes)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, Exception):
                raise WorkerError(f"the worker pool did not start: {exc}") from exc
            raise
        log.info(
            "worker_pool_started",
            processes=self.processes,
            start_method=self._context.get_start_method(),
        )

    # ASYNC109: more than asyncio.timeout() around the call, this timeout also stops the
    # worker that runs the job (see below), which the caller cannot do.
    async def run(
        self,
        fn: Callable[[*Ts], R],
        *args: *Ts,
        timeout: float | None = None,
    ) -> R:
        """Run ``fn(*args)`` in a worker process and return its result.

        ``fn`` must be importable by name (a module-level function) and ``args`` and the
        result picklable. A job cannot be interrupted: cancelling the caller only removes a
        job that has not started; a running one finishes and its result is dropped.

        Args:
            fn: the job.
            args: its positional arguments.
            timeout: seconds the job may take, queueing included; None waits for ever.
                A job past its timeout is stopped by replacing the whole pool, since its
                worker cannot be told apart: other jobs in flight then fail with
                :class:`WorkerCrashed` and may be retried.

        Raises:
            WorkerTimeout: the job did not finish within ``timeout``.
            WorkerCrashed: a worker died while the job was queued or running.
            WorkerPoolClosed: the pool is not started, or was stopped before the job finished.
            Exception: whatever ``fn`` raised, unchanged.
        """
        if self._executor is None and self._on_demand and self._stopping is None:
            async with self._starting:
                if self._executor is None and self._stopping is None:
                    await self.start()
        executor = self._current()
        try:
            future = executor.submit(fn, *args)
        except BrokenProcessPool:
            # The pool broke between jobs; this one never started, so it is safe to submit
            # it once more to fresh workers.
            executor = self._replace(executor, "broken_between_jobs")
            future = executor.submit(fn, *args)
        except RuntimeError as exc:
            # "cannot schedule new futures after shutdown": stop() ran since _current().
            raise WorkerPoolClosed("the worker pool is stopped") from exc
        return await self._wait(executor, future, fn, limit=timeout)

    async def _wait(
        self,
        executor: ProcessPoolExecutor,
        future: Future[R],
        fn: Callable[..., object],
        *,
        limit: float | None,
    ) -> R:
        waiter = asyncio.wrap_future(future)
        try:
            async with asyncio.timeout(limit) as deadline:
                return await waiter
        except TimeoutError:
            if not deadline.expired():
                raise  # the job itself raised TimeoutError
            job = getattr(fn, "__qualname__", repr(fn))
            log.warning("worker_job_timeout", job=job, timeout=limit)
            if not future.cancel():
                # Running: the only way to get its worker back is to end the processes.
                self._replace(executor, "job_timeout", kill=True)
            raise WorkerTimeout(f"job {job} did not finish within {limit} s") from None
        except BrokenProcessPool as exc:
            if self._stopping is not None and executor is not self._executor:
                raise WorkerPoolClosed("the worker pool was stopped while the job ran") from exc
            self._replace(executor, "worker_died")
            raise WorkerCrashed(
                "a worker process died while the job was queued or running"
            ) from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and (task is None or task.cancelling() == 0):
                # Not our caller's cancellation: stop() cancelled the queued job.
                raise WorkerPoolClosed("the worker pool was stopped before the job ran") from None
            raise

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the pool: drop queued jobs, give running ones ``grace`` seconds, then
        terminate the workers. Never hangs on a stuck job.

        Cancelling the caller does not interrupt the shutdown (it continues in a task, as
        asyncpg shields a connection's release); calling stop() again waits for that task.
        """
        if self._stopping is None:
            executor, self._executor = self._executor, None
            self._stopping = asyncio.ensure_future(self._shutdown(executor, grace))
        await asyncio.shield(self._stopping)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- internals ----------------------------------------------------------------------

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            raise WorkerPoolClosed("the worker pool is not running")
        return self._executor

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=self._context,
            max_tasks_per_child=self._max_tasks_per_child,
            initializer=_exit_with_parent,
            # With spawn the worker's parent is this process; with forkserver, the fork server.
            initargs=(os.getpid() if self._context.get_start_method() == "spawn" else None,),
        )

    def _replace(
        self, broken: ProcessPoolExecutor, reason: str, *, kill: bool = False
    ) -> ProcessPoolExecutor:
        """Swap ``broken`` for a fresh executor, once: calls that see the same broken
        executor later get the replacement. Returns the current executor."""
        if broken is not self._executor:
            return self._current()
        fresh = self._new_executor()
        self._executor = fresh
        processes = _processes_of(broken)
        broken.shutdown(wait=False, cancel_futures=True)
        if kill:
            for process in processes:
                process.kill()
        # The old executor's manager thread reaps its processes and fails its futures. The
        # fresh one spawns its workers as jobs arrive (a fork-exec of ~2 ms on the caller).
        log.warning("worker_pool_replaced", reason=reason)
        return fresh

    async def _shutdown(self, executor: ProcessPoolExecutor | None, grace: float) -> None:
        if executor is None:
            return
        processes = _processes_of(executor)
        manager = getattr(executor, "_executor_manager_thread", None)
        executor.shutdown(wait=False, cancel_futures=True)
        terminated = await asyncio.to_thread(_reap, processes, manager, grace)
        log.info("worker_pool_stopped", terminated=terminated)


def _processes_of(executor: ProcessPoolExecutor) -> list[BaseProcess]:
    # ProcessPoolExecutor keeps no public list of its processes; shutdown() drops the
    # attribute, so callers take this list before shutting down.
    processes = getattr(executor, "_processes", None)
    return list(processes.values()) if processes else []


def _exit_with_parent(parent: int | None) -> None:
    """Worker initializer: end the worker once the process that started it is gone.

    A hub that is SIGKILLed or crashes runs no shutdown, and a worker blocked on its call
    queue never sees an EOF (it holds both ends of the queue's pipe), so it would live on
    with the resource tracker, reparented, after every crash. A daemon thread notices the
    reparenting instead: ``os.getppid()`` changes when the parent dies. The parent is the hub
    with ``spawn``; with ``forkserver`` it is the fork server, which exits with the hub.

    ``parent`` (spawn) is the pid of the process that made the pool: a hub killed while the
    worker was still importing is already gone when this runs, the worker's parent is then
    its new reaper, and the worker ends at once instead of watching the reaper for ever.

    A worker also ignores SIGINT: Ctrl-C in a terminal goes to the whole process group, and
    the hub stops its workers itself (shutdown, then terminate after a grace period); a
    worker that took the signal would die mid-job with a ``KeyboardInterrupt`` traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is None:
        parent = os.getppid()
    elif os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _warm_up(executor: ProcessPoolExecutor, processes: int) -> None:
    # With spawn, a worker is started per submit while none is idle: n no-ops start n.
    for future in [executor.submit(_noop) for _ in range(processes)]:
        future.result()


def _reap(processes: list[BaseProcess], manager: object, grace: float) -> int:
    """Wait up to ``grace`` seconds for workers to exit, then terminate and kill the rest.
    Returns how many had to be terminated."""
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    stuck = [p for p in processes if p.is_alive()]
    for process in stuck:
        process.terminate()
    for process in stuck:
        process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
    if isinstance(manager, threading.Thread):
        # With its workers gone the manager thread fails the remaining futures and exits.
        manager.join(5.0)
    return len(stuck)
