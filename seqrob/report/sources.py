"""Where the report's numbers come from: a stored analysis that matches the data, or a fresh one.

:func:`gather` looks for a stored ``significance`` analysis with exactly the report's
parameters over the warehouse's current data (same fingerprint); only when there is
none does it run :func:`seqrob.analysis.analyze` (and stores it, unless the warehouse
is open read-only). It returns everything the report shows as :class:`Inputs`: one
:class:`Group` per method x task x metric with its scores and result rows, the stored
design, runs and languages, and the analysis records behind them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from seqrob.analysis import Options, Significance, analyze
from seqrob.analysis.significance import KIND
from seqrob.warehouse.errors import DesignError, InputError

__all__ = ["AnalysisRecord", "Group", "Inputs", "gather", "load_calibration"]


@dataclass
class AnalysisRecord:
    """A stored analysis the report uses, and whether it was found or run for the report."""

    analysis_id: int | None
    created_at: object
    seqrob_version: str | None
    parameters: dict
    data_hash: str
    reused: bool


@dataclass
class Group:
    """One analysed method x task x metric (or a task x metric's comparison of methods, with
    ``method`` None): its scores and everything the analysis found about it."""

    label: str
    method: str | None
    task: str
    metric: str
    scores: pd.DataFrame
    results: pd.DataFrame
    findings: pd.DataFrame
    model: dict
    design: dict
    power: pd.DataFrame
    analysis_id: int | None

    @property
    def compares_methods(self) -> bool:
        """Whether this is a task x metric's comparison of training methods (``method`` is None)."""
        return self.design.get("kind") == "methods"

    @property
    def methods(self) -> list[str]:
        """The methods compared (reference first), for a comparison of methods."""
        return list(self.design.get("methods", []))

    @property
    def orders(self) -> list[str]:
        """The orders as the analysis listed them (baseline first, then by name)."""
        return list(self.design["orders"])

    @property
    def baseline(self) -> str | None:
        return self.design.get("baseline")

    @property
    def warnings(self) -> list[str]:
        return list(self.design.get("warnings", []))

    @property
    def min_seeds(self) -> int:
        if self.compares_methods:
            return int(self.design["seeds"])
        return int(min(self.design["seeds_per_order"].values()))

    @property
    def families(self) -> list[str]:
        """Families, most languages first (then by name)."""
        return list(self.design["families"])


@dataclass
class Inputs:
    """All the report shows."""

    path: str
    groups: list[Group]  # one per method x task x metric: the order questions
    comparisons: list[Group]  # one per task x metric stored with several methods: the method questions
    analyses: list[AnalysisRecord]
    design: object  # seqrob.warehouse.design.Design
    runs: pd.DataFrame
    languages: pd.DataFrame
    fingerprint: str
    options: Options
    experiment: str | None
    calibration: pd.DataFrame | None = None
    cautions: list[str] = field(default_factory=list)
    data_calibration: pd.DataFrame | None = None

    @property
    def parameters(self) -> dict:
        return self.options.parameters()

    @property
    def findings(self) -> pd.DataFrame:
        """Every group's findings, in report order (the comparisons of methods last)."""
        return pd.concat([g.findings for g in self.groups + self.comparisons], ignore_index=True)


def gather(warehouse, options: Options | None = None, *, reanalyze: bool = False, calibration=None,
           analysis: Significance | None = None) -> Inputs:  # fmt: skip
    """Find (or run) the analyses behind a report and collect what it shows.

    ``analysis``: report this analysis (of ``warehouse``) instead of finding or running one.
    """
    options = options if analysis is None else analysis.options
    options = options or Options()
    scores = warehouse.scores()
    if scores.empty:
        raise DesignError("the warehouse holds no finished runs - ingest, simulate or train first (or run seqrob demo)")
    chosen = scores
    for column in ("experiment", "task", "metric", "method"):
        value = getattr(options, column)
        if value is not None:
            chosen = chosen[chosen[column] == value]
    # One analysis covers every method (its result rows name their group) and compares them.
    if analysis is not None:
        analyses = [(analysis, analysis.analysis_id is not None)]
    else:
        analyses = [_analysis(warehouse, options, reanalyze=reanalyze)]
    groups, comparisons, records, cautions = [], [], [], []
    for found, reused in analyses:
        records.append(_record(warehouse, found, reused=reused))
        cautions.extend(found.cautions)
        for group in _groups(chosen, found):
            (comparisons if group.compares_methods else groups).append(group)
    experiments = sorted(chosen["experiment"].unique())
    runs = warehouse.table("runs")
    return Inputs(
        path=warehouse.path,
        groups=groups,
        comparisons=comparisons,
        analyses=records,
        design=warehouse.info(experiment=options.experiment),
        runs=runs if options.experiment is None else runs[runs["experiment"] == options.experiment],
        languages=warehouse.table("languages"),
        fingerprint=warehouse.fingerprint(),
        options=options,
        experiment=options.experiment or (experiments[0] if len(experiments) == 1 else None),
        calibration=load_calibration(calibration),
        cautions=list(dict.fromkeys(cautions)),
        data_calibration=_data_calibration(warehouse),
    )


def _analysis(warehouse, options: Options, *, reanalyze: bool) -> tuple[Significance, bool]:
    """The stored analysis with exactly these options over the current data, else a fresh one."""
    found = None if reanalyze else warehouse.find_analysis(KIND, options.parameters())
    if found is not None:
        return Significance.from_stored(warehouse.load_analysis(found)), True
    return analyze(warehouse, options, store=warehouse.writable), False


def _record(warehouse, analysis: Significance, *, reused: bool) -> AnalysisRecord:
    if analysis.analysis_id is None:  # a read-only warehouse: used without being stored
        return AnalysisRecord(None, pd.Timestamp.now(tz="UTC"), None, analysis.parameters, warehouse.fingerprint(),
                              reused=False)  # fmt: skip
    stored = warehouse.load_analysis(analysis.analysis_id)
    return AnalysisRecord(analysis.analysis_id, stored["created_at"], stored["seqrob_version"], stored["parameters"],
                          stored["data_hash"], reused=reused)  # fmt: skip


def _data_calibration(warehouse) -> pd.DataFrame | None:
    """The newest calibration on this warehouse's own runs (seqrob analyze calibrate --db), if any."""
    from seqrob.analysis.calibrate import DATA_KIND

    found = warehouse.latest_analysis(DATA_KIND)
    if found is None:
        return None
    table = pd.DataFrame((warehouse.load_analysis(found)["model"] or {}).get("calibration", []))
    return table.assign(analysis_id=found) if len(table) else None


def _groups(scores: pd.DataFrame, analysis: Significance) -> list[Group]:
    models = {m.get("label"): m for m in analysis.models}
    groups = []
    for label, design in analysis.design.items():
        method, task, metric = design["method"], design["task"], design["metric"]
        data = scores[(scores["task"] == task) & (scores["metric"] == metric)]
        if design.get("kind") != "methods":
            data = data[data["method"] == method]
        results = analysis.results
        if results["label"].notna().any():
            rows = results[results["label"] == label]
        else:  # stored before result rows named their group (one method per analysis then)
            rows = results[(results["task"] == task) & (results["metric"] == metric)]
        power = analysis.power
        groups.append(Group(
            label=label, method=method, task=task, metric=metric, scores=data.reset_index(drop=True),
            results=rows.reset_index(drop=True),
            findings=analysis.findings[analysis.findings["label"] == label].reset_index(drop=True),
            model=models.get(label, {"label": label}), design=design,
            power=power[power["label"] == label].reset_index(drop=True) if len(power) else power,
            analysis_id=analysis.analysis_id,
        ))  # fmt: skip
    return groups


CALIBRATION_COLUMNS = ("seeds", "orders", "families", "test", "measure", "estimate")


def load_calibration(source=None) -> pd.DataFrame | None:
    """A calibration table (:func:`seqrob.analysis.calibrate.calibrate`'s, or its CSV from
    ``seqrob analyze calibrate --out``): ``source`` as a DataFrame or a CSV path; by default
    the table shipped with seqrob (``seqrob/analysis/data/calibration.csv``), if there is one."""
    if isinstance(source, pd.DataFrame):
        table = source
    elif source is not None:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"no calibration table at {path}", fix="write one with: seqrob analyze calibrate --out FILE")
        table = pd.read_csv(path)
    else:
        from seqrob.analysis.calibrate import shipped_table

        table = shipped_table()
        if table is None:
            return None
    missing = [c for c in CALIBRATION_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"the calibration table lacks columns {missing}", fix="use the CSV of seqrob analyze calibrate --out")
    return table
