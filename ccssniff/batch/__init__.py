"""Many traces into Parquet tables (sessions, messages, events), on local processes or a Dask cluster.

Needs the ``batch`` extra (pyarrow, dask[distributed], duckdb); the command says so when it is missing.
"""
