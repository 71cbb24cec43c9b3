"""The questions `ccssniff batch --summary` answers across sessions, as DuckDB SQL over the tables.

The README shows the same queries, reading ``tables/sessions.parquet``; here the path is filled in.
"""
from __future__ import annotations

from pathlib import Path

QUERIES = {
    "Cable check per charger": """
        SELECT coalesce(evse_vendor, evse_mac, 'unknown') AS charger, count(*) AS sessions,
               round(median(cable_check_s), 2) AS median_cable_check_s,
               round(max(cable_check_s), 2) AS max_cable_check_s
        FROM '{sessions}'
        WHERE kind = 'v2g' AND cable_check_s IS NOT NULL
        GROUP BY charger ORDER BY median_cable_check_s DESC
    """,
    "Failure causes per car": """
        SELECT coalesce(ev_vendor, evccid, 'unknown') AS car, coalesce(cause, 'no cause given') AS cause,
               count(*) AS sessions
        FROM '{sessions}'
        WHERE kind = 'v2g' AND outcome <> 'completed'
        GROUP BY car, cause ORDER BY sessions DESC, car, cause
    """,
    "Sessions limited by the EVSE": """
        SELECT protocol, count(*) AS charging_sessions,
               round(100 * avg(CASE WHEN limited_by_evse_share > 0.5 THEN 1 ELSE 0 END), 1)
                   AS pct_limited_by_evse
        FROM '{sessions}'
        WHERE kind = 'v2g' AND limited_by_evse_share IS NOT NULL
        GROUP BY protocol ORDER BY protocol
    """,
}


def run_queries(outdir: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """title -> (column names, rows) of every query over OUTDIR's tables."""
    import duckdb

    sessions = str(outdir / "sessions.parquet").replace("'", "''")
    answers = {}
    with duckdb.connect() as connection:
        for title, sql in QUERIES.items():
            cursor = connection.execute(sql.format(sessions=sessions))
            answers[title] = ([column[0] for column in cursor.description], cursor.fetchall())
    return answers
