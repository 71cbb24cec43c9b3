"""``ccssniff batch PATH... -o OUTDIR``: many traces into session, message and event tables (Parquet)."""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ccssniff.ui.errors import UsageFailure

EXTRA_HINT = "ccssniff batch needs pyarrow, dask[distributed] and duckdb: pip install 'ccssniff[batch]'"


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for sessions.parquet, messages.parquet, events.parquet (and parts/ to resume).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes on this machine [default: all cores].")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run on this Dask distributed scheduler (tcp://host:8786) instead of local processes.")
@click.option("--summary", is_flag=True, help="At the end, print cross-session tables (DuckDB queries).")
def batch(paths: tuple[str, ...], outdir: Path, jobs: int | None, scheduler: str | None, summary: bool) -> None:
    """Decode many traces (files, folders, globs; pcap, pcapng, gzip; local paths or fsspec URLs)
    into Parquet tables: one row per V2G session and SLAC run, per V2G message, per verdict or error.

    A file whose content is already in OUTDIR (same hash) is skipped, so an interrupted or
    repeated run only does what is left. With --scheduler, the workers must reach the files and
    OUTDIR under the same names (a shared folder, or URLs for the files).

    \b
    Examples:
      ccssniff batch traces/ -o tables/                  every capture below traces/, all cores
      ccssniff batch 'logs/**/*.pcapng.gz' -o tables/ -j 2
      ccssniff batch /shared/traces -o /shared/tables --scheduler tcp://10.0.0.5:8786
      ccssniff batch traces/ -o tables/ --summary        and print cable check, failures, limits
    """
    needed = ["pyarrow"] + (["distributed"] if scheduler else []) + (["duckdb"] if summary else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageFailure(f"{EXTRA_HINT} ({', '.join(missing)} missing)")
    from ccssniff.batch import inputs, runner

    try:
        sources = inputs.expand(paths)
    except inputs.NoInput as exc:
        raise UsageFailure(str(exc)) from None
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageFailure(f"cannot create {outdir}: {exc.strerror or exc}") from None

    stderr = Console(stderr=True)
    progress = _progress(stderr, len(sources)) if sys.stderr.isatty() else None
    statuses: Counter[str] = Counter()
    totals: Counter[str] = Counter()

    def on_result(result: dict) -> None:
        statuses[result["status"]] += 1
        if result["status"] != "skipped":
            totals.update({key: result.get(key, 0) for key in ("sessions", "messages", "events")})
        if progress is not None:
            progress.advance(progress.task_ids[0])
            progress.refresh()

    try:
        if progress is not None:
            progress.start()
        runner.run(sources, str(outdir), jobs=jobs, scheduler=scheduler, on_result=on_result)
    except OSError as exc:  # e.g. the scheduler cannot be reached
        raise UsageFailure(f"batch failed: {exc}") from None
    finally:
        if progress is not None:
            progress.stop()
    done = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    click.echo(f"{len(sources)} files: {done}; new rows: {totals['sessions']} sessions, "
               f"{totals['messages']} messages, {totals['events']} events -> {outdir}", err=True)
    if summary:
        _print_summary(Console(file=sys.stdout, soft_wrap=True), outdir)


def _progress(console: Console, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # auto_refresh off: the bar redraws as files finish, no extra thread
    bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True, auto_refresh=False)
    bar.add_task("files", total=total)
    return bar


def _print_summary(console: Console, outdir: Path) -> None:
    from ccssniff.batch.queries import run_queries

    for title, (columns, rows) in run_queries(outdir).items():
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("-" if value is None else str(value) for value in row))
        if not rows:
            table.caption = "no sessions with these values"
        console.print(table)
