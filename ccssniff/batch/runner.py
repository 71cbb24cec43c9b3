"""Run the per-file tasks on local processes or a Dask cluster, then merge the parts into tables.

Both executors take the same task (``work.process_file``) and hand back results as they finish,
so the local run and the cluster run share every line but the one that submits. Local runs use
a plain process pool: bench/bench_batch.py shows it starts in a fraction of the time a Dask
LocalCluster needs, which dominates small batches.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ccssniff.batch.tables import TABLES, merge_parts
from ccssniff.batch.work import PARTS, part_path, process_file, read_marker


def _context():
    """forkserver where there is one: workers fork from a clean process that has imported the
    decoder once (fast start, and none of the parent's threads, e.g. pyarrow's pools, forked)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ccssniff.batch.work", "ccssniff.decode.pipeline"])
    return context


def run_local(sources: Sequence[str], outdir: str, jobs: int) -> Iterator[dict[str, Any]]:
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
        futures = [pool.submit(process_file, source, outdir) for source in sources]
        for future in as_completed(futures):
            yield future.result()


def run_dask(sources: Sequence[str], outdir: str, scheduler: str | Any) -> Iterator[dict[str, Any]]:
    """``scheduler``: an address (tcp://host:8786) or a distributed Client / LocalCluster."""
    from distributed import Client, as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        # pure=False: a file's content may change under the same name; hashing decides, not Dask
        futures = client.map(process_file, list(sources), outdir=outdir, pure=False)
        for future in dask_completed(futures):
            yield future.result()
    finally:
        if client is not scheduler:
            client.close()


def run(sources: Sequence[str], outdir: str, *, jobs: int | None = None, scheduler: Any = None,
        on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Process every source, then rebuild the three tables from every finished part in OUTDIR."""
    Path(outdir, PARTS).mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    sources = sorted(sources, key=_size, reverse=True)  # largest first: no long file left for the end
    results_iter = run_dask(sources, outdir, scheduler) if scheduler is not None else \
        run_local(sources, outdir, min(jobs, max(1, len(sources))))
    results = []
    for result in results_iter:
        results.append(result)
        if on_result is not None:
            on_result(result)
    merge_tables(Path(outdir))
    return results


def _size(source: str) -> int:
    try:
        return os.path.getsize(source)
    except OSError:  # URLs and unreadable files: their size is not worth a round trip
        return 0


def merge_tables(outdir: Path) -> dict[str, int]:
    """OUTDIR/{sessions,messages,events}.parquet from the parts of every finished file, in file order."""
    markers = [read_marker(path) for path in sorted((outdir / PARTS).glob("*.json"))]
    markers = sorted((m for m in markers if m is not None), key=lambda m: (m["file"], m["hash"]))
    counts = {}
    for table in TABLES:
        parts = [part_path(outdir, m["hash"], table) for m in markers if table in m.get("tables", ())]
        counts[table] = merge_parts(parts, outdir / f"{table}.parquet", table)
    return counts
