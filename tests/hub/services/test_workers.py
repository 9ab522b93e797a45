"""WorkerPool with real worker processes: the loop stays on time while CPU-heavy work runs,
and crashes, timeouts and shutdowns end in a WorkerError, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from hub.services.workers import (
    WorkerCrashed,
    WorkerError,
    WorkerPool,
    WorkerPoolClosed,
    WorkerTimeout,
)

# --- jobs: module-level, so that a spawned worker can import them by name ----------------


def burn(seconds: float) -> int:
    """Pure-Python FNV-1a hashing for ``seconds``: CPU-bound, holding the GIL throughout."""
    end = time.perf_counter() + seconds
    digest, rounds = 0xCBF29CE484222325, 0
    while time.perf_counter() < end:
        for byte in range(1000):
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        rounds += 1
    return rounds


def note_pid_then_sleep(pid_file: str, seconds: float) -> int:
    """Write the worker's pid where the test can see it, then sit in the worker."""
    temp = pid_file + ".tmp"
    Path(temp).write_text(str(os.getpid()))
    os.replace(temp, pid_file)
    time.sleep(seconds)
    return os.getpid()


def square(x: int) -> int:
    return x * x


def reject(message: str) -> None:
    raise ValueError(message)


def time_out_by_itself() -> None:
    raise TimeoutError("the job's own timeout")


# --- helpers -----------------------------------------------------------------------------


class LatencyProbe:
    """How late a periodic timer fires on the running loop: the lag a display would see."""

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.lateness: list[float] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.lateness.append(loop.time() - due)

    def p99(self) -> float:
        ordered = sorted(self.lateness)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]


def read_pid(pid_file: Path) -> int | None:
    return int(pid_file.read_text()) if pid_file.exists() else None


async def wait_for_pid(pid_file: Path, within: float = 20.0) -> int:
    deadline = time.monotonic() + within
    while (pid := read_pid(pid_file)) is None:
        assert time.monotonic() < deadline, "the job did not start"
        await asyncio.sleep(0.01)
    return pid


async def assert_process_gone(pid: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.monotonic() < deadline, f"worker {pid} is still running"
        await asyncio.sleep(0.02)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    """One worker: on a two-core machine the loop keeps the other core."""
    async with WorkerPool(1) as started:
        yield started


# --- tests -------------------------------------------------------------------------------


async def test_cpu_heavy_work_in_the_pool_keeps_the_loop_on_time(pool: WorkerPool) -> None:
    """While 1.5 s of pure-Python hashing runs in the pool, p99 timer lag stays under 50 ms;
    the same work on the loop delays the timer by more than a second (the probe can fail)."""
    in_pool = LatencyProbe()
    async with in_pool.running():
        rounds = await pool.run(burn, 1.5)
    assert rounds > 0
    assert len(in_pool.lateness) >= 100
    assert in_pool.p99() < 0.050, f"loop lag p99 {in_pool.p99() * 1000:.1f} ms with the pool"

    on_loop = LatencyProbe()
    async with on_loop.running():
        await asyncio.sleep(0.05)
        burn(1.5)  # deliberately blocking: the control experiment
        await asyncio.sleep(0.05)
    assert max(on_loop.lateness) > 1.0, "the probe did not notice a blocked loop"


async def test_results_and_job_errors_come_back_unchanged(pool: WorkerPool) -> None:
    """A return value is returned; an exception the job raises is re-raised as itself."""
    assert await pool.run(square, 12) == 144
    with pytest.raises(ValueError, match="row 7: not a date"):
        await pool.run(reject, "row 7: not a date")
    with pytest.raises(TimeoutError, match="the job's own timeout"):
        await pool.run(time_out_by_itself, timeout=30)
    assert await pool.run(square, 3) == 9


async def test_ctrl_c_in_the_terminal_does_not_kill_a_job(pool: WorkerPool, tmp_path: Path) -> None:
    """SIGINT (the terminal sends it to the whole process group) leaves a running job be:
    the hub stops its workers itself."""
    pid_file = tmp_path / "pid"
    job = asyncio.create_task(pool.run(note_pid_then_sleep, str(pid_file), 0.5))
    pid = await wait_for_pid(pid_file)
    os.kill(pid, signal.SIGINT)
    assert await job == pid


async def test_a_killed_worker_raises_worker_crashed_and_the_next_job_runs(
    pool: WorkerPool, tmp_path: Path
) -> None:
    """SIGKILL of the worker running a job fails that job clearly; fresh workers take the next."""
    pid_file = tmp_path / "pid"
    job = asyncio.create_task(pool.run(note_pid_then_sleep, str(pid_file), 30.0))
    pid = await wait_for_pid(pid_file)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerCrashed) as caught:
        await job
    assert caught.value.code == "worker_crashed"
    assert isinstance(caught.value, WorkerError)
    assert await pool.run(square, 7) == 49
    assert pid not in pool.pids()


async def test_a_job_past_its_timeout_raises_worker_timeout_and_frees_its_worker(
    pool: WorkerPool, tmp_path: Path
) -> None:
    """The stuck worker is stopped, so the next job on a one-worker pool runs at once."""
    pid_file = tmp_path / "pid"
    with pytest.raises(WorkerTimeout) as caught:
        await pool.run(note_pid_then_sleep, str(pid_file), 30.0, timeout=1.0)
    assert caught.value.code == "worker_timeout"
    started = time.monotonic()
    assert await pool.run(square, 5, timeout=20.0) == 25
    assert time.monotonic() - started < 10.0
    await assert_process_gone(await wait_for_pid(pid_file))


async def test_a_cancelled_caller_leaves_the_pool_usable(pool: WorkerPool) -> None:
    """Cancelling run() drops the caller, not the pool: the next job runs."""
    job = asyncio.create_task(pool.run(burn, 0.3))
    await asyncio.sleep(0.05)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert await pool.run(square, 6) == 36


async def test_stop_terminates_a_stuck_job_after_its_grace(tmp_path: Path) -> None:
    """stop() drops queued jobs, waits the grace period, terminates the worker and returns;
    the jobs and later calls get WorkerPoolClosed; the pool can be started again."""
    pool = WorkerPool(1)
    await pool.start()
    workers = pool.pids()
    pid_file = tmp_path / "pid"
    running = asyncio.create_task(pool.run(note_pid_then_sleep, str(pid_file), 30.0))
    await wait_for_pid(pid_file)
    queued = asyncio.create_task(pool.run(square, 2))
    await asyncio.sleep(0.05)

    started = time.monotonic()
    await pool.stop(grace=0.5)
    assert time.monotonic() - started < 5.0
    for job in (running, queued):
        with pytest.raises(WorkerPoolClosed) as caught:
            await job
        assert caught.value.code == "worker_pool_closed"
    for pid in workers:
        await assert_process_gone(pid)
    with pytest.raises(WorkerPoolClosed):
        await pool.run(square, 1)

    await pool.start()
    assert await pool.run(square, 4) == 16
    await pool.stop()


async def test_a_cancelled_stop_still_stops_the_pool(tmp_path: Path) -> None:
    """Cancelling stop() does not leave workers behind; stop() again waits for the same end."""
    pool = WorkerPool(1)
    await pool.start()
    workers = pool.pids()
    pid_file = tmp_path / "pid"
    running = asyncio.create_task(pool.run(note_pid_then_sleep, str(pid_file), 30.0))
    await wait_for_pid(pid_file)

    stopper = asyncio.create_task(pool.stop(grace=0.5))
    await asyncio.sleep(0.1)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    await pool.stop()
    with pytest.raises(WorkerPoolClosed):
        await running
    for pid in workers:
        await assert_process_gone(pid)


async def test_a_pool_that_is_not_started_refuses_jobs() -> None:
    """run() before start() raises WorkerPoolClosed instead of starting workers implicitly."""
    with pytest.raises(WorkerPoolClosed):
        await WorkerPool(1).run(square, 1)


async def test_an_on_demand_pool_starts_with_its_first_job_and_stays_stopped_after_stop() -> None:
    pool = WorkerPool(1, on_demand=True)
    assert not pool.running
    assert await asyncio.gather(pool.run(square, 3), pool.run(square, 4)) == [9, 16]
    assert len(pool.pids()) == 1
    await pool.stop()
    with pytest.raises(WorkerPoolClosed):
        await pool.run(square, 5)
