"""What is stored: the design of the experiments in a warehouse (``seqrob warehouse info``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

__all__ = ["Design", "describe"]


@dataclass
class Design:
    """The stored design, as DataFrames.

    Attributes
    ----------
    experiments
        ``experiment, runs, finished, failed, methods``.
    tasks
        ``experiment, task, metric, runs, languages, scores, outcome, examples``:
        ``outcome`` names the per-example outcome stored (``correct``, ``value``,
        ``tp/fp/fn``) or ``none`` when only scores exist.
    orders
        ``experiment, method, order, seeds, seed_values, failed``.
    families
        ``family, languages, codes`` over all stored scores.
    missing
        One row per absent cell: ``experiment, method, task, metric, order, seed, language``,
        against the full cross of the orders, seeds and languages stored for that task and metric.
    failed
        ``run_id, experiment, order, seed, method, failure``.
    warnings
        Sentences on what the design cannot support (one seed, a family with one language...).
    """

    experiments: pd.DataFrame
    tasks: pd.DataFrame
    orders: pd.DataFrame
    families: pd.DataFrame
    missing: pd.DataFrame
    failed: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def runs(self) -> pd.DataFrame:
        """Alias of :attr:`orders` for readers looking for runs."""
        return self.orders


def describe(con: duckdb.DuckDBPyConnection, *, experiment: str | None = None) -> Design:
    """Summarise the design stored in the warehouse (optionally one experiment)."""
    chosen = ["r.experiment = $experiment"] if experiment is not None else []
    params = {"experiment": experiment} if experiment is not None else {}

    def filtered(*conditions: str) -> str:
        parts = chosen + list(conditions)
        return "WHERE " + " AND ".join(parts) if parts else ""

    where = filtered()

    def q(sql: str) -> pd.DataFrame:
        return con.execute(sql, params).df()

    experiments = q(
        f"""SELECT r.experiment, count(*) AS runs,
                   count(*) FILTER (r.status = 'finished') AS finished,
                   count(*) FILTER (r.status <> 'finished') AS failed,
                   string_agg(DISTINCT r.method, ', ' ORDER BY r.method) AS methods
            FROM runs r {where} GROUP BY r.experiment ORDER BY r.experiment"""
    )
    tasks = q(
        f"""WITH s AS (
                SELECT r.experiment, s.task, s.metric, count(DISTINCT s.run_id) AS runs,
                       count(DISTINCT s.language) AS languages, count(*) AS scores
                FROM scores s JOIN runs r USING (run_id) {where}
                GROUP BY ALL),
            p AS (
                SELECT r.experiment, p.task,
                       CASE WHEN bool_or(p.correct IS NOT NULL) THEN 'correct'
                            WHEN bool_or(p.value IS NOT NULL) THEN 'value'
                            ELSE 'tp/fp/fn' END AS outcome,
                       count(*) AS examples
                FROM predictions p JOIN runs r USING (run_id) {where}
                GROUP BY ALL)
            SELECT s.*, coalesce(p.outcome, 'none') AS outcome, coalesce(p.examples, 0) AS examples
            FROM s LEFT JOIN p USING (experiment, task)
            ORDER BY s.experiment, s.task, s.metric"""
    )
    orders = q(
        f"""SELECT r.experiment, r.method, r."order",
                   count(DISTINCT r.seed) FILTER (r.status = 'finished') AS seeds,
                   array_to_string(list_sort(list(DISTINCT r.seed) FILTER (r.status = 'finished')), ',') AS seed_values,
                   count(*) FILTER (r.status <> 'finished') AS failed
            FROM runs r {where} GROUP BY r.experiment, r.method, r."order"
            ORDER BY r.experiment, r.method, r."order" <> 'none', r."order" """
    )
    families = q(
        f"""SELECT coalesce(l.family, '(unknown)') AS family, count(DISTINCT s.language) AS languages,
                   string_agg(DISTINCT s.language, ', ' ORDER BY s.language) AS codes
            FROM scores s JOIN runs r USING (run_id) LEFT JOIN languages l ON l.code = s.language {where}
            GROUP BY ALL ORDER BY languages DESC, family"""
    )
    missing = q(
        f"""WITH cells AS (
                SELECT r.experiment, r.method, s.task, s.metric, r."order", r.seed, s.language
                FROM scores s JOIN runs r USING (run_id) {filtered("r.status = 'finished'")}),
            groups AS (SELECT DISTINCT experiment, method, task, metric FROM cells),
            o AS (SELECT DISTINCT experiment, method, task, metric, "order" FROM cells),
            sd AS (SELECT DISTINCT experiment, method, task, metric, seed FROM cells),
            lg AS (SELECT DISTINCT experiment, method, task, metric, language FROM cells),
            grid AS (
                SELECT g.experiment, g.method, g.task, g.metric, o."order", sd.seed, lg.language
                FROM groups g
                JOIN o USING (experiment, method, task, metric)
                JOIN sd USING (experiment, method, task, metric)
                JOIN lg USING (experiment, method, task, metric))
            SELECT * FROM grid EXCEPT SELECT * FROM cells
            ORDER BY experiment, method, task, metric, "order", seed, language"""
    )
    failed = q(
        f"""SELECT r.run_id, r.experiment, r."order", r.seed, r.method, r.failure
            FROM runs r {filtered("r.status <> 'finished'")}
            ORDER BY r.experiment, r."order", r.seed"""
    )
    return Design(experiments, tasks, orders, families, missing, failed, _warnings(orders, families, missing, tasks))


def _warnings(orders: pd.DataFrame, families: pd.DataFrame, missing: pd.DataFrame, tasks: pd.DataFrame) -> list[str]:
    notes: list[str] = []
    for (experiment, method), group in orders.groupby(["experiment", "method"], sort=True):
        if len(group) < 2:
            notes.append(f"{experiment}/{method}: one order only ('{group['order'].iloc[0]}'): nothing to compare")
        few = group[group["seeds"] < 3]
        for _, row in few.iterrows():
            notes.append(
                f"{experiment}/{method}: order '{row['order']}' has {row['seeds']} seed(s); "
                "at least 3 are needed to separate order from seed noise (5+ recommended)"
            )
    for _, row in families.iterrows():
        if row["languages"] == 1:
            notes.append(
                f"family {row['family']} has one language ({row['codes']}): "
                "a family effect there cannot be told from that language's own"
            )
    if len(missing):
        notes.append(f"{len(missing)} cells (order x seed x language) are missing; see Design.missing")
    if len(tasks) and (tasks["outcome"] == "none").any():
        names = ", ".join(sorted(set(tasks.loc[tasks["outcome"] == "none", "task"])))
        notes.append(f"no per-example outcomes for {names}: resampling examples is impossible there")
    return notes
