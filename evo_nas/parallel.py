"""Executors for the expensive metrics of a search: in-process, local processes (loky), Dask.

Only the driver writes the archive; workers compute and return plain values. An executor runs
one task per new architecture and yields ``(index, result)`` as tasks finish; the driver
(:meth:`problems.NASProblem.measure`) commits them in the batch's order, so the archive does not
depend on the number of workers or on which one finished first.

Heavy evaluators (a supernet with its calibration data) are not sent with every task: an object
with a ``worker_spec`` (see :class:`WorkerSpec`) pickles as that small spec, and
:func:`from_spec` builds it once per worker process and keeps it (keyed by the spec's digest).
On Dask a :class:`WorkerSetup` plugin also builds it as each worker starts, including workers
that replace a dead one.

Memory: an evaluation allocates activations of tens to hundreds of MB per layer. glibc's malloc
maps each such block afresh and unmaps it on free, so every evaluation paid the kernel for
zeroing fresh pages: 60 % of its CPU time in the driver, about 75 % in a worker (Dask starts
workers with ``MALLOC_TRIM_THRESHOLD_=65536``; a Dask task runs in a thread, on a malloc arena of
its own). Evaluation processes therefore keep and reuse freed memory (:func:`steady_allocator`:
workers from their start through :data:`MALLOC_ENV`, the driver when it evaluates) within a task
and give it back after each task (:func:`release_memory`, so the size stays that of one
evaluation); ``EVO_NAS_MALLOC=system`` keeps the system default.

Faults: a task whose worker process died is retried once, alone (so a death is blamed on the
task that caused it, not on the tasks that happened to run beside it); if it dies again the
executor yields a :class:`WorkerDied` for it and the search records that architecture as failed.

Security: the local Dask cluster listens on 127.0.0.1 only. For a remote scheduler pass a
``distributed.security.Security`` (TLS) object; see the README. Tasks carry configs (dicts of
ints/floats/strings) and specs (paths and settings), never archive contents.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from evo_nas.errors import ConfigError

__all__ = ["BACKENDS", "MALLOC_ENV", "WorkerSpec", "SpecMetric", "SpecPickled", "WorkerDied",
           "Executor", "SerialExecutor", "LokyExecutor", "DaskExecutor", "make_executor",
           "from_spec", "worker_rank", "worker_device", "spec_digest", "steady_allocator",
           "release_memory"]

BACKENDS = ("serial", "loky", "dask")


@runtime_checkable
class WorkerSpec(Protocol):
    """A small, picklable recipe for a heavy metric: ``build()`` makes it in a worker;
    ``digest`` names everything that changes what ``build()`` returns (the per-worker cache
    key)."""

    digest: str

    def build(self) -> Any: ...


def spec_digest(fields: dict[str, Any]) -> str:
    """A stable digest of JSON-able settings (for :attr:`WorkerSpec.digest`)."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------- worker state
_BUILT: dict[str, Any] = {}  # digest -> built metric, per process
_WORKER: dict[str, Any] = {"rank": None, "threads": None, "allocator": None}

# glibc malloc of an evaluation worker, from its start (the environment is read once, when the
# process starts): one arena for all threads (a Dask task runs in a thread, whose own arena
# would map large blocks afresh), blocks taken from the heap, never mapped one by one, and
# freed memory kept up to 1 GiB within a task (release_memory returns it after each). See
# steady_allocator for why.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0",
              "MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(16 << 20)}
_MALLOPT = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_TOP_PAD_": -2, "MALLOC_MMAP_THRESHOLD_": -3,
            "MALLOC_MMAP_MAX_": -4, "MALLOC_ARENA_MAX": -8}  # mallopt's parameter numbers


def _malloc_env() -> dict[str, str]:
    """:data:`MALLOC_ENV`, or nothing with ``EVO_NAS_MALLOC=system``."""
    return {} if os.environ.get("EVO_NAS_MALLOC") == "system" else dict(MALLOC_ENV)


def steady_allocator() -> str:
    """Make glibc's malloc in this process reuse freed memory instead of mapping and zeroing
    fresh pages for every large block; return what the allocator now does.

    By default glibc maps each block above its mmap threshold (at most 32 MiB) with ``mmap``
    and unmaps it on free, so the next forward pass faults every page in again and the kernel
    zeroes it. A supernet evaluation allocates such blocks (a batch of activations) for each
    layer: here that was 2.4 s of the 4.0 s CPU time of one cifar evaluation (800,000 page
    faults; 300 images), 4.9 s of 6.6 s under Dask's trim setting; with these settings 0.07 s
    of 1.5 s. Mapping with huge pages (``THP_MEM_ALLOC_ENABLE``) cuts the faults, not the
    zeroing (3-4 s). Freed memory stays with the process within a task (trimmed only above
    1 GiB); :func:`release_memory` gives it back after each task, else fragmentation grows a
    process by GBs.

    Applies :data:`MALLOC_ENV` (values from the environment where set there, as a worker's
    are) with ``mallopt``. Idempotent; a no-op on other C libraries and with
    ``EVO_NAS_MALLOC=system``. In a running process it covers the main thread's arena (where
    the driver evaluates); workers get :data:`MALLOC_ENV` from their start, which also puts
    their threads on that arena.
    """
    if _WORKER["allocator"] is not None:
        return _WORKER["allocator"]
    settings = {k: os.environ.get(k, v) for k, v in _malloc_env().items()}
    desc = "system default" if settings else "system default (EVO_NAS_MALLOC=system)"
    if settings:
        try:
            import ctypes

            mallopt = ctypes.CDLL(None).mallopt
            if all(mallopt(_MALLOPT[k], int(v)) == 1 for k, v in settings.items()
                   if k in _MALLOPT and k != "MALLOC_ARENA_MAX"):  # arenas: only from the start
                desc = "glibc malloc: " + ", ".join(f"{k}={v}" for k, v in settings.items())
        except (OSError, AttributeError, ValueError):
            pass
    _WORKER["allocator"] = desc
    return desc


_TRIM: list[Any] = []  # glibc's malloc_trim, once looked up (None elsewhere)


def release_memory() -> None:
    """Give the pages of freed memory back to the system (``malloc_trim``): what an evaluation
    process does after each task. Within a task, :func:`steady_allocator` lets freed blocks be
    reused without page faults; between tasks the process shrinks to what it still holds.
    Without it, heap fragmentation grew a process by 3 GB over 24 cifar evaluations (with the
    system allocator too: 1.4 to 3.1 GB); with it, 0.76 GB throughout, for 0.1 s of the 1.7 s
    an evaluation saves. A no-op with ``EVO_NAS_MALLOC=system`` and off glibc."""
    if not _TRIM:
        trim = None
        if _malloc_env():
            try:
                import ctypes

                trim = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):
                trim = None
        _TRIM.append(trim)
    if _TRIM[0] is not None:
        _TRIM[0](0)


def _run_task(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """One task as an evaluation process runs it: ``fn(*args)``, then :func:`release_memory`."""
    try:
        return fn(*args)
    finally:
        release_memory()


def from_spec(spec: WorkerSpec) -> Any:
    """The metric ``spec`` describes, built at most once in this process (what unpickling a
    spec'd metric calls, so the checkpoint and data load once per worker, not per task)."""
    obj = _BUILT.get(spec.digest)
    if obj is None:
        obj = _BUILT[spec.digest] = spec.build()
    return obj


class SpecPickled:
    """Mixin of heavy metrics: with a :attr:`worker_spec` set, the object pickles as that small
    spec alone, so a worker builds it once (checkpoint, data) and keeps it, instead of receiving
    the model with every task."""

    worker_spec: WorkerSpec | None = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.worker_spec is not None:
            return SpecMetric, (self.worker_spec,)
        return super().__reduce_ex__(protocol)


class SpecMetric:
    """A metric known by its :class:`WorkerSpec` only: calling it builds the real metric once
    in this process (:func:`from_spec`) and delegates. What a spec'd metric unpickles to, so a
    build error happens inside the task, where it is reported, not while unpickling."""

    cheap = False

    def __init__(self, spec: WorkerSpec) -> None:
        self.worker_spec = spec

    def __call__(self, configs: list[dict[str, Any]]) -> Any:
        return from_spec(self.worker_spec)(configs)


def worker_rank() -> int | None:
    """This worker's rank (0, 1, ...) in its pool, or None in the driver."""
    return _WORKER["rank"]


def worker_device(device: str) -> str:
    """``device`` as this process should use it: a worker given plain ``cuda`` takes one GPU,
    round-robin by rank, so workers on a multi-GPU node do not all share GPU 0."""
    rank = worker_rank()
    if device != "cuda" or rank is None:
        return device
    import torch

    n = torch.cuda.device_count()
    return f"cuda:{rank % n}" if n else device


def _allocator_from_env() -> str:
    """What a process started with :data:`MALLOC_ENV` (or not) does, from its environment."""
    got = {k: os.environ[k] for k in MALLOC_ENV if k in os.environ}
    if not got:
        return "system default"
    return "glibc malloc (from the start): " + ", ".join(f"{k}={v}" for k, v in got.items())


def _set_threads(threads: int) -> None:
    """Torch threads of this worker; before torch is imported, through the environment (so a
    worker that never evaluates a torch metric does not pay for importing it)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    _WORKER["threads"] = threads


def _no_leak_restarts() -> None:
    """Stop loky from replacing this worker when its resident size has grown 300 MB since its
    first task (loky's leak guard): an evaluation worker grows that much by design (the
    evaluator's input caches, one per resolution, hundreds of MB each at ImageNet sizes; the
    largest architecture's activations so far), and each replacement loaded the checkpoint and
    data again mid-search: one restart in 8 cifar evaluations cost 10 s here."""
    with contextlib.suppress(ImportError):
        from joblib.externals.loky import process_executor

        if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
            process_executor._MAX_MEMORY_LEAK_SIZE = 1 << 62


def _loky_init(threads: int, rank_dir: str, n_ranks: int) -> None:
    """loky worker start: torch threads, the allocator, and the lowest free rank. A rank is an
    ``flock`` on ``rank-<i>`` that the OS drops when the process dies, so a replacement takes
    its rank."""
    _set_threads(threads)
    steady_allocator()
    _no_leak_restarts()
    for i in range(max(n_ranks, 1) * 4):
        fd = os.open(os.path.join(rank_dir, f"rank-{i}"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _WORKER["rank"], _WORKER["rank_fd"] = i, fd  # fd stays open: the lock lives with us
        return


# ----------------------------------------------------------------------------- executors
@dataclass(frozen=True)
class WorkerDied:
    """The result of a task whose worker died when it ran alone (its retry, after its first
    worker died: a death in a shared pool may strike a bystander, or a task not yet started, so
    only the lone run's death is the task's own)."""

    message: str


class Executor(Protocol):
    """Runs ``fn(*args)`` for each task; yields ``(index, result | WorkerDied)``."""

    workers: int

    def prepare(self, specs: Sequence[WorkerSpec]) -> None: ...

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
            ) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """In the driver, one task after another, lazily: each result exists (and is committed)
    before the next task starts, as before parallel evaluation existed."""

    workers = 1

    def prepare(self, specs: Sequence[WorkerSpec]) -> None:
        return None  # loky workers build from specs lazily; Dask overrides to register a plugin

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
            ) -> Iterator[tuple[int, Any]]:
        steady_allocator()  # the driver evaluates: as a worker would (see the module docstring)
        for i, args in enumerate(tasks):
            yield i, _run_task(fn, args)

    def close(self) -> None:
        pass


class _PoolExecutor(ABC):
    """Shared retry logic: submit, collect, and rerun alone each task whose worker died. A pool
    backend (loky, Dask) says how to submit, how to wait, and what a worker death looks like."""

    workers: int
    _generation = 0  # bumped by each recovery: old futures' deaths do not recover twice

    @abstractmethod
    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """A future for ``fn(*args)`` on the pool."""

    @abstractmethod
    def _completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """``futures`` as they finish."""

    @abstractmethod
    def _died(self, exc: BaseException) -> bool:
        """Whether a task's exception means its worker process died."""

    def _recover(self) -> None:
        """Make the pool usable again after a worker death (loky: a new pool)."""
        return None  # Dask replaces dead workers itself

    def _window(self) -> int:
        return 1 << 30

    def prepare(self, specs: Sequence[WorkerSpec]) -> None:
        return None  # loky workers build from specs lazily; Dask overrides to register a plugin

    def _submit_live(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Submit; a pool found broken at submission (a worker died and the pool noticed before
        that worker's future did) is replaced first. The task never ran, so it is no suspect."""
        try:
            return self._submit(fn, args)
        except Exception as exc:
            if not self._died(exc):
                raise
            self._recover()
            return self._submit(fn, args)

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]
            ) -> Iterator[tuple[int, Any]]:
        suspects: list[int] = []
        todo = list(range(len(tasks)))
        inflight: dict[Any, tuple[int, int]] = {}  # future -> (task, pool generation)
        while todo or inflight:
            while todo and len(inflight) < self._window():
                i = todo.pop(0)
                inflight[self._submit_live(fn, tasks[i])] = (i, self._generation)
            fut = next(self._completed(list(inflight)))
            i, gen = inflight.pop(fut)
            exc = fut.exception()
            if exc is None:
                yield i, fut.result()
            elif self._died(exc):
                suspects.append(i)  # it may have been a bystander: retried below, alone
                if gen == self._generation:
                    self._recover()  # a fresh pool for the tasks not yet submitted
            else:
                raise exc
        for i in sorted(suspects):  # the retry, alone: a second death is this task's own
            fut = self._submit_live(fn, tasks[i])
            next(self._completed([fut]))
            exc = fut.exception()
            if exc is None:
                yield i, fut.result()
            elif self._died(exc):
                self._recover()
                yield i, WorkerDied(f"the worker evaluating it died when it ran alone "
                                    f"(its retry): "
                                    f"{type(exc).__name__}: {exc}")
            else:
                raise exc


class LokyExecutor(_PoolExecutor):
    """``workers`` local processes (joblib's loky). At most ``workers`` tasks are in flight, so
    a worker death leaves few suspects to retry; ``threads`` torch threads each."""

    def __init__(self, workers: int, threads: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"search.workers = {workers}: must be at least 1")
        self.workers, self.threads = workers, threads
        self._rank_dir = tempfile.TemporaryDirectory(prefix="evo-nas-ranks-")
        self._pool: Any = None

    def _get_pool(self) -> Any:
        if self._pool is None:
            from joblib.externals.loky import ProcessPoolExecutor

            n = str(self.threads)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_loky_init,
                initargs=(self.threads, self._rank_dir.name, self.workers),
                env={"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
                     **_malloc_env()})
        return self._pool

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self._get_pool().submit(_run_task, fn, args)

    def _completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from joblib.externals.loky import as_completed

        return as_completed(futures)

    def _died(self, exc: BaseException) -> bool:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)  # TerminatedWorkerError is one

    def _recover(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                self._pool.shutdown(wait=False, kill_workers=True)
        self._pool = None
        self._generation += 1

    def _window(self) -> int:
        return self.workers

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._rank_dir.cleanup()


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    """Undo what a local cluster's nannies (threads of this process) write into this process's
    environment for their workers (``pre-spawn-environ``: malloc, thread counts), so later
    subprocesses of the driver do not inherit worker settings."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for k in set(os.environ) - set(before):
            os.environ.pop(k, None)
        os.environ.update({k: v for k, v in before.items() if os.environ.get(k) != v})


def _dask_plugin_class() -> type:
    from distributed import WorkerPlugin

    class WorkerSetup(WorkerPlugin):
        """Runs on every worker as it starts (also one replacing a dead worker): torch threads,
        the rank (so CUDA workers take one GPU each), and the heavy metrics built once."""

        def __init__(self, threads: int, specs: Sequence[WorkerSpec]) -> None:
            self.threads, self.specs = threads, list(specs)

        def setup(self, worker: Any) -> None:
            _dask_setup(worker.name, self.threads, self.specs)

    return WorkerSetup


def _dask_setup(name: Any, threads: int, specs: Sequence[WorkerSpec]) -> None:
    """A Dask worker's setup (module level: the plugin class above is pickled by value, with
    copies of the module globals it names, so state it set itself was lost: ranks stayed None).

    The allocator is not changed here: Dask runs tasks in a thread, whose malloc arena only
    :data:`MALLOC_ENV` set at the process start reaches (a local cluster's workers get it; start
    remote workers with it). Set later, from this thread, it made the task thread's large
    blocks fall back to the shared heap, and a worker grew to 4.4 GB in 16 evaluations."""
    _set_threads(threads)
    _WORKER["allocator"] = _allocator_from_env()
    try:
        _WORKER["rank"] = int(name)
    except (TypeError, ValueError):
        _WORKER["rank"] = int(hashlib.sha256(str(name).encode()).hexdigest(), 16) % 1024
    for spec in specs:
        from_spec(spec)


class DaskExecutor(_PoolExecutor):
    """Tasks on a Dask cluster: ``scheduler`` (an address, with ``security`` for TLS), or a
    ``LocalCluster`` of ``workers`` processes bound to 127.0.0.1 with one thread each. On the
    local cluster the scheduler retries nothing itself (``allowed-failures: 0``), so the retry
    rule is this module's; a remote scheduler applies its own ``allowed-failures`` first."""

    def __init__(self, workers: int = 2, scheduler: str | None = None, threads: int = 1,
                 security: Any = None) -> None:
        import dask
        from distributed import Client, LocalCluster

        if workers < 1:
            raise ConfigError(f"search.workers = {workers}: must be at least 1")
        self.threads = threads
        self.cluster: Any = None
        if scheduler:
            self.client = Client(scheduler, security=security)
        else:
            environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}),
                       **_malloc_env()}  # set before the worker process starts
            # tasks keep no data on the workers: a worker near its memory limit during an
            # evaluation has nothing to spill, and pausing it would stall the search; only
            # terminate (95 %) stays
            no_pause = {f"distributed.worker.memory.{k}": False
                        for k in ("target", "spill", "pause")}
            with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                                  "distributed.nanny.pre-spawn-environ": environ, **no_pause}), \
                    _environ_kept():
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, scheduler_port=0, security=security)
            self.client = Client(self.cluster, security=security)
        self.workers = max(len(self.client.scheduler_info().get("workers", {})), 1)
        self._prepared: set[str] = set()
        self._plugins = 0
        self._register([])

    def _register(self, specs: Sequence[WorkerSpec]) -> None:
        self._plugins += 1
        self.client.register_plugin(_dask_plugin_class()(self.threads, specs),
                                    name=f"evo-nas-setup-{self._plugins}")

    def prepare(self, specs: Sequence[WorkerSpec]) -> None:
        """Build the heavy metrics on every worker now and on any worker that joins later."""
        new = [s for s in specs if s.digest not in self._prepared]
        if new:
            self._prepared.update(s.digest for s in new)
            self._register(new)

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self.client.submit(_run_task, fn, args, pure=False)

    def _completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed

        return iter(as_completed(futures))

    def _died(self, exc: BaseException) -> bool:
        from distributed.scheduler import KilledWorker

        return isinstance(exc, KilledWorker)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(backend: str = "serial", workers: int = 1, scheduler: str | None = None,
                  threads: int = 1, security: Any = None) -> Executor:
    """The executor for ``search.backend`` / ``--backend``: ``serial`` (in the driver), ``loky``
    (``workers`` local processes) or ``dask`` (``scheduler`` address, or a local cluster)."""
    if backend not in BACKENDS:
        raise ConfigError(f"search.backend = {backend!r}: choose one of {list(BACKENDS)}")
    if workers < 1:
        raise ConfigError(f"search.workers = {workers}: must be at least 1")
    if threads < 1:
        raise ConfigError(f"search.worker_threads = {threads}: must be at least 1")
    if scheduler and backend != "dask":
        raise ConfigError(f"--scheduler {scheduler!r} needs --backend dask")
    if backend == "loky":
        return LokyExecutor(workers, threads)
    if backend == "dask":
        return DaskExecutor(workers, scheduler, threads, security)
    return SerialExecutor()
