"""`ccssniff batch` throughput: files/s, sessions/s and V2G messages/s with 1 and 2 workers (scaling
ratio) and each worker's peak memory; the start-up cost of local processes against a Dask
LocalCluster on a small batch; and a worker's peak memory on a small, the largest and a 4x longer trace.

Inputs: every capture in ../shared/captures (real cars and chargers) and small lab sessions made here.

    python3 bench/bench_batch.py [--small 20]
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ccssniff.batch import runner  # noqa: E402
from ccssniff.batch.inputs import expand  # noqa: E402
from ccssniff.batch.work import peak_rss_kib, process_file  # noqa: E402

CAPTURES = REPO.parent / "shared" / "captures"
LARGEST = CAPTURES / "pyplc" / "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng"
SMALL = CAPTURES / "josev" / "din.pcapng"


def lab_files(folder: Path, count: int) -> list[str]:
    from ccssniff.capture.pcapng import PcapngWriter
    from ccssniff.emulate.lab import LabConfig, run_lab

    protocol_modes = (("din", "dc"), ("iso2", "dc"), ("iso2", "ac"), ("iso20", "dc"), ("iso20", "ac"))
    paths = []
    for number in range(count):
        protocol, mode = protocol_modes[number % len(protocol_modes)]
        buffer = io.BytesIO()
        with PcapngWriter(buffer) as writer:
            run_lab(LabConfig(protocol=protocol, mode=mode, charge_time=2.0, seed=number),
                    lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment))
        path = folder / f"lab_{number:03d}.pcapng"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def timed_run(sources: list[str], **how) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory(prefix="ccsB-bench-") as outdir:
        started = time.perf_counter()
        results = runner.run(sources, outdir, **how)
        return time.perf_counter() - started, results


def _burn(seconds: float) -> float:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return time.process_time()


def cores_available(workers: int, seconds: float = 2.0) -> float:
    """CPU the machine gives `workers` busy processes at once, in cores: the ceiling for any speed-up."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return sum(pool.map(_burn, [seconds] * workers)) / seconds


def timed_phases(sources: list[str], workers: int) -> tuple[float, list[dict], float]:
    """(whole wall s, results, wall s of the per-file phase): runner.run's two steps timed apart."""
    with tempfile.TemporaryDirectory(prefix="ccsB-bench-") as outdir:
        started = time.perf_counter()
        ordered = sorted(sources, key=runner._size, reverse=True)
        results = list(runner.run_local(ordered, outdir, workers))
        files_done = time.perf_counter()
        runner.merge_tables(Path(outdir))
        return time.perf_counter() - started, results, files_done - started


def peak_by_worker(results: list[dict]) -> list[float]:
    peaks: dict[int, int] = defaultdict(int)
    for result in results:
        peaks[result["worker"]] = max(peaks[result["worker"]], result["peak_rss_kib"])
    return sorted(peak / 1024 for peak in peaks.values())


def _alone(path: str, outdir: str, queue) -> None:
    result = process_file(path, outdir)
    queue.put((result["messages"], peak_rss_kib()))


def peak_alone(path: Path) -> tuple[int, float]:
    """(messages, peak MiB) of one fresh process that batches just this file."""
    context = multiprocessing.get_context("spawn")  # a clean process image, nothing inherited
    queue = context.Queue()
    with tempfile.TemporaryDirectory(prefix="ccsB-bench-") as outdir:
        process = context.Process(target=_alone, args=(str(path), outdir, queue))
        process.start()
        messages, peak = queue.get(timeout=300)
        process.join()
    return messages, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20, help="lab sessions in the small batch")
    args = parser.parse_args()
    if not CAPTURES.is_dir():
        sys.exit(f"{CAPTURES} is absent: the bench needs ../shared/captures")
    sources = expand([str(CAPTURES)])
    print(f"corpus: {len(sources)} real captures from ../shared/captures; load average at start "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (others' work shares them)")
    ceiling = {workers: cores_available(workers) for workers in (1, 2)}
    print(f"busy-loop probe: 1 process gets {ceiling[1]:.2f} cores, 2 processes get {ceiling[2]:.2f} cores "
          f"(ceiling of the 2-worker speed-up here: {ceiling[2] / ceiling[1]:.2f}x)")
    print(f"{'workers':>7} {'wall s':>7} {'files/s':>8} {'sessions/s':>11} {'msgs/s':>8} {'speed-up':>9} {'CPU s':>6} {'cores got':>9}  peak MiB per worker")
    single = None
    single_files = None
    for workers in (1, 2):
        seconds, results, files_seconds = timed_phases(sources, workers)
        sessions = sum(r["sessions"] for r in results)
        messages = sum(r["messages"] for r in results)
        single, single_files = single or seconds, single_files or files_seconds
        peaks = ", ".join(f"{peak:.0f}" for peak in peak_by_worker(results))
        cpu = sum(r["cpu_seconds"] for r in results)
        print(f"{workers:7d} {seconds:7.2f} {len(results) / seconds:8.1f} {sessions / seconds:11.1f} "
              f"{messages / seconds:8.0f} {single / seconds:8.2f}x {cpu:6.1f} {cpu / seconds:9.2f}  {peaks}")
        print(f"{'':7} files phase {files_seconds:.2f} s ({single_files / files_seconds:.2f}x, "
              f"cores got {cpu / files_seconds:.2f}), merge {seconds - files_seconds:.2f} s")
    print(f"({sessions} session rows (V2G sessions and SLAC runs), {messages} V2G messages per run; "
          f"load average now {os.getloadavg()[0]:.1f})")
    print("CPU s = the workers' CPU time on the files; cores got = CPU s / wall s (what the machine gave)")

    with tempfile.TemporaryDirectory(prefix="ccsB-bench-lab-") as folder:
        small = lab_files(Path(folder), args.small)
        print(f"\nsmall batch: {len(small)} lab sessions, 2 workers, wall time including start-up")
        seconds, _ = timed_run(small, jobs=2)
        print(f"  local process pool (forkserver):    {seconds:6.2f} s")
        from distributed import LocalCluster

        started = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            seconds, _ = timed_run(small, scheduler=cluster.scheduler_address)
        print(f"  Dask LocalCluster (2 processes):    {time.perf_counter() - started:6.2f} s "
              f"(of which the batch itself {seconds:.2f} s)")

    print("\npeak memory of one worker process batching a single file (spawned, VmHWM):")
    long_trace = _long_trace(LARGEST, 4)
    for label, path in (("small capture", SMALL), ("largest real capture", LARGEST), ("largest x4", long_trace)):
        messages, peak = peak_alone(path)
        print(f"  {label:22} {messages:7d} V2G messages  {peak:6.1f} MiB")


def _long_trace(source: Path, repeat: int) -> Path:
    from bench_decode import build_long_trace

    return build_long_trace(source, repeat)


if __name__ == "__main__":
    main()
