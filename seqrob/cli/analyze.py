"""``seqrob analyze significance|power``: thin wrappers of ``seqrob.analysis``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqrob.cli._common import (
    DbOption,
    FormatOption,
    WaitOption,
    check_format,
    console,
    console_warning,
    frame_table,

    print_frame,
    print_frames,
    stderr_console,
)

group = typer.Typer(
    help="Statistics over stored runs: does order change accuracy and across-seed variance?",
    no_args_is_help=True,
)

TaskOption = Annotated[Optional[str], typer.Option(help="Only this task (default: every task).")]
MetricOption = Annotated[Optional[str], typer.Option(help="Only this metric (default: every metric).")]
ExperimentOption = Annotated[
    Optional[str], typer.Option(help="The experiment to analyse (required when several are stored).")
]
BaselineOption = Annotated[str, typer.Option(help="Reference order of the contrasts.")]

# How the console shows each kind of row (the analysis itself never rounds).
_SHOWN = ("order_anova", "order_family_anova", "contrast", "variance")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="analyze")


# Result rows whose estimate is a score or a difference of scores (in points for accuracy-like metrics).
_IN_SCORE_UNITS = ("contrast", "mixed_contrast", "bootstrap_contrast", "signflip_contrast", "bootstrap_mean", "emmean",
                   "mean", "sd")  # fmt: skip
_DIFFERENCES = ("contrast", "mixed_contrast", "bootstrap_contrast", "signflip_contrast")


def _rounded(frame):
    """Result rows for reading on a terminal: scores and differences in points (accuracy-like
    metrics), a sign only on differences, one interval column; ratios and statistics as they are."""
    import pandas as pd

    from seqrob.report.text import number, scale_of

    def interval(row) -> str:
        if pd.isna(row.estimate):
            return ""
        scale = scale_of(row.metric) if row.test in _IN_SCORE_UNITS else None
        signed = row.test in _DIFFERENCES

        def show(x):
            return scale.value(x, signed=signed) if scale is not None else number(x, 3, signed=signed)

        text = show(row.estimate)
        if pd.notna(row.ci_low) and pd.notna(row.ci_high):
            text += f" [{show(row.ci_low)}, {show(row.ci_high)}]"
        return text

    def statistic(row) -> str:
        if pd.isna(row.statistic):
            return ""
        return f"{row.statistic:.3g}" + (f" ({row.df:.3g} df)" if pd.notna(row.df) else "")

    return pd.DataFrame(
        {
            "test": frame["test"],
            "term": frame["term"],
            "family": frame["family"].fillna("all"),
            "estimate [CI] (points)": [interval(r) for r in frame.itertuples()],
            "statistic": [statistic(r) for r in frame.itertuples()],
            "p": frame["p_value"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
            "p_adj": frame["p_adjusted"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
            "n": frame["n"].map(lambda v: "" if pd.isna(v) else str(int(v))),
        }
    )


@group.command("significance")
def significance(
    db: DbOption = None,
    task: TaskOption = None,
    metric: MetricOption = None,
    experiment: ExperimentOption = None,
    method: Annotated[Optional[str], typer.Option(help="Only this training method (finetune, prompt).")] = None,
    baseline: BaselineOption = "none",
    alpha: Annotated[float, typer.Option(help="Level of the tests; intervals are 1 - alpha.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm (family-wise) or bh (false discovery rate).")] = "holm",
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of every resampling RNG.")] = 0,
    effect: Annotated[float, typer.Option(help="Order difference (metric units) the power analysis sizes for.")] = 0.01,
    fmt: FormatOption = "table",
    json_: Annotated[Optional[Path], typer.Option("--json", help="Also write the whole analysis as JSON here.")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Also print every result row (the detail tables).")] = False,
    wait: WaitOption = 10.0,
) -> None:
    """Does order change the score or its spread, per family? Findings first, then the tests."""
    from seqrob.analysis import Options, analyze
    from seqrob.warehouse import Warehouse

    check_format(fmt)
    options = Options(task=task, metric=metric, experiment=experiment, method=method, baseline=baseline, alpha=alpha,
                      correction=correction, n_boot=n_boot, seed=seed, effect=effect)  # fmt: skip
    with Warehouse(db, wait=wait, create=False) as wh, stderr_console.status("analysing") as status:
        outcome = analyze(wh, options, progress=status.update)
        path = wh.path
    if json_:
        outcome.to_json(json_)
    if fmt != "table":
        _print_analysis(outcome, fmt, all_rows=all_rows)
        return
    show_findings(outcome, all_rows=all_rows)
    console.print(f"stored as analysis {outcome.analysis_id} in {path}" + (f"; JSON: {json_}" if json_ else ""),
                  markup=False, highlight=False)  # fmt: skip


def show_findings(outcome, *, all_rows: bool = False) -> None:
    """The terminal's rendering of an analysis: per group the verdict sentences and table
    (the same as page 1 of the report), then cautions and warnings; ``all_rows`` adds
    every result row."""
    from seqrob.report.findings import statements, table_title, verdict_table

    for label, found in outcome.findings.groupby("label", sort=False):
        console.rule(label)
        for sentence in statements(found, prefix=False):
            console.print("- " + sentence, markup=False, highlight=False)
        table = verdict_table(found)
        if len(table):
            console.print(table_title(found), markup=False, highlight=False)
            console.print(findings_table(table))
    if outcome.cautions:
        console.rule("can these verdicts be trusted?")
        for sentence in outcome.cautions:
            console.print(f"! {sentence}", markup=False, highlight=False)
    if all_rows:
        for (task_name, metric_name), rows in outcome.results.groupby(["task", "metric"], sort=False):
            console.print(frame_table(_rounded(rows), f"{task_name} {metric_name}: every result row"))
    for note in outcome.warnings:
        console_warning(note)


def findings_table(table):
    """The verdict table for a terminal: words wrap whole (never split) and 80 columns suffice.

    Each column is at least its longest word (a CI counts as one word) wide; the room
    left on the console goes to the columns that then wrap least. A CI that does not fit
    beside its estimate goes on a line of its own.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = table.astype(str)
    narrow, natural = {}, {}
    for name in table.columns:
        words = [w for cell in [name, *cells[name]] for w in cell.partition(" [")[0].split()]
        words += ["[" + cell.partition(" [")[2] for cell in cells[name] if " [" in cell]
        narrow[name] = max(map(len, words), default=1)
        natural[name] = max(map(len, [name, *cells[name]]), default=1)
    room = console.width - sum(narrow.values()) - 3 * (len(narrow) - 1)  # a divider and padding between columns
    widths = dict(narrow)
    for name in ("orders", "compared", "score", "spread", "seeds needed", "difference [CI]", "SD ratio [CI]", "family"):
        if name in widths and room > 0:
            extra = min(room, natural[name] - narrow[name])
            widths[name] += extra
            room -= extra
    out = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    for name in table.columns:
        out.add_column(name, width=widths[name])
        if len(max(cells[name], key=len, default="")) > widths[name]:
            cells[name] = cells[name].str.replace(" [", "\n[", regex=False)
    for row in cells.itertuples(index=False):
        out.add_row(*(Text(v) for v in row))
    return out


def _print_analysis(outcome, fmt: str, *, all_rows: bool) -> None:
    """json: the whole analysis; csv / markdown: the findings (and with --all, every result row)."""
    if fmt == "json":
        print(outcome.to_json())
        return
    if all_rows:
        print_frames({"findings": outcome.findings, "results": outcome.results}, fmt)
    else:
        print_frame(outcome.findings, fmt, "findings")  # one plain table: read_csv reads it as is


@group.command("power")
def power_command(
    effect: Annotated[float, typer.Option(help="Order difference to detect, in the metric's units (0.01 = 1 point).")],
    db: DbOption = None,
    task: TaskOption = None,
    metric: MetricOption = None,
    experiment: ExperimentOption = None,
    method: Annotated[Optional[str], typer.Option(help="Only this training method (finetune, prompt).")] = None,
    baseline: BaselineOption = "none",
    alpha: Annotated[float, typer.Option(help="Two-sided level of the test.")] = 0.05,
    target: Annotated[float, typer.Option("--power", help="Target power.")] = 0.80,
    sd_ratio: Annotated[float, typer.Option(help="SD ratio the variance test should detect.")] = 2.0,
    fmt: FormatOption = "table",
    wait: WaitOption = 10.0,
) -> None:
    """Seeds per order each family needs to detect an order effect, from its own seed noise."""
    from seqrob.analysis.significance import power_table
    from seqrob.warehouse import Warehouse

    check_format(fmt)
    with Warehouse(db, read_only=True, wait=wait) as wh:
        table = power_table(wh, effect=effect, task=task, metric=metric, experiment=experiment, method=method,
                            baseline=baseline, alpha=alpha, power=target, sd_ratio=sd_ratio)  # fmt: skip
    if fmt != "table":
        print_frame(table, fmt, "power")
        return
    several = table["method"].nunique() > 1
    for (method_name, task_name, metric_name), rows in table.groupby(["method", "task", "metric"], sort=False):
        shown = rows[["family", "sd_difference", "seeds_needed", "seeds_needed_variance", "seeds_now"]].rename(
            columns={"sd_difference": "SD of diff.", "seeds_needed": "seeds (mean)",
                     "seeds_needed_variance": f"seeds (SD x{sd_ratio:g})", "seeds_now": "now"})  # fmt: skip
        level = rows["level"].iloc[0]
        label = f"{task_name} {metric_name}" + (f" ({method_name})" if several else "")
        console.print(frame_table(shown, f"{label}: seeds per order for {target:.0%} power to detect {effect:g} (t over "
                                         f"seeds at alpha {level:.2g}, Holm's first step) and an SD ratio of "
                                         f"{sd_ratio:g}"))  # fmt: skip


@group.command("calibrate")
def calibrate_command(
    db: Annotated[
        Optional[Path],
        typer.Option(help="Calibrate on this warehouse's own runs (orders relabelled within seeds) instead of simulations."),
    ] = None,
    experiment: ExperimentOption = None,
    n: Annotated[int, typer.Option("--n", help="With --db: relabellings per task x metric.", min=10)] = 200,
    backend: Annotated[str, typer.Option(help="With --db: local (processes) or ray.")] = "local",
    n_sim: Annotated[
        Optional[int], typer.Option(help="Simulated data sets per design (null and planted); default 200, --fast 40.")
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="A quick run: fewer data sets and bootstrap replicates.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulations or relabellings.")] = 0,
    seeds: Annotated[str, typer.Option(help="Seeds per order of the grid, comma-separated.")] = "3,5,10,20",
    orders: Annotated[str, typer.Option(help="Numbers of orders of the grid (2-4), comma-separated.")] = "2,4",
    families: Annotated[str, typer.Option(help="Language sets of the grid: few, many.")] = "few,many",
    noises: Annotated[
        str,
        typer.Option(help="Noise structures of the grid (default: all five): model, run_x_family, outliers, "
                          "ceiling, unbalanced.", show_default=False),
    ] = "model,run_x_family,outliers,ceiling,unbalanced",
    alpha: Annotated[float, typer.Option(help="Level of the tests; intervals are 1 - alpha.")] = 0.05,
    workers: Annotated[int, typer.Option(help="Processes to spread the work over.", min=1)] = 1,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the table as CSV here.")] = None,
    fmt: FormatOption = "table",
    wait: WaitOption = 10.0,
) -> None:
    """Type-I error and CI coverage of the tests: on simulations from a known truth, or on --db's own runs."""
    from seqrob.warehouse.errors import InputError

    check_format(fmt)

    def say(line: str) -> None:  # progress: on stderr when stdout is for programs
        (console if fmt == "table" else stderr_console).print(line, markup=False, highlight=False)

    def words(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())

    def numbers(text: str, what: str) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in words(text))
        except ValueError:
            raise InputError(f"--{what} '{text}' is not a list of integers", fix=f"e.g. --{what} 3,5,10") from None

    if db is not None:
        from seqrob.analysis.calibrate import calibrate_warehouse, off_target
        from seqrob.warehouse import Warehouse

        if not db.exists():
            raise InputError(f"no warehouse at {db}", fix="check the path (seqrob warehouse info --db PATH)")
        with Warehouse(db, wait=wait, create=False) as wh:
            table, analysis_id = calibrate_warehouse(wh, experiment=experiment, n=n, alpha=alpha, seed=seed,
                                                     workers=workers, backend=backend, progress=say)  # fmt: skip
        for (task_name, metric_name), rows in table.groupby(["task", "metric"], sort=False):
            if fmt != "table":
                break
            shown = rows.assign(test=rows["test"].str.replace(" (Holm family)", " (Holm)", regex=False))
            console.print(frame_table(shown[["test", "measure", "estimate", "mc_se", "n_sim", "status"]],
                                      f"{task_name} {metric_name}: the verdict tests on {db.name}'s runs, orders "
                                      f"relabelled within seeds (alpha = {alpha:g}; target type I 0.04-0.06, "
                                      f"family-wise <= {alpha:g})"))  # fmt: skip
        for r in off_target(table).itertuples():
            console_warning(f"{r.task} {r.metric}: {r.test} {r.measure} is {r.estimate:.3f} (MC SE {r.mc_se:.3f}) on "
                            f"these runs, target {r.target_low:g}-{r.target_high:g}: {r.status}")  # fmt: skip
        for r in table[table["status"] == "too few relabellings"].itertuples():
            console_warning(f"{r.task} {r.metric}: {r.note}")
        say(f"stored as analysis {analysis_id} in {db}")
    else:
        from seqrob.analysis.calibrate import calibrate

        table = calibrate(
            seeds=numbers(seeds, "seeds"), orders=numbers(orders, "orders"), families=words(families),
            noises=words(noises), n_sim=n_sim, alpha=alpha, seed=seed, fast=fast, workers=workers, progress=say,
        )  # fmt: skip
        shown = table[["seeds", "orders", "families", "noise", "test", "measure", "estimate", "mc_se", "n_sim",
                       "status"]]  # fmt: skip
        if fmt == "table":
            console.print(frame_table(shown, f"calibration at alpha = {alpha:g} (targets: type I 0.04-0.06, coverage "
                                         "0.93-0.97, family-wise <= alpha)"))  # fmt: skip
        missed = table[table["status"].str.startswith("missed")]
        if len(missed):
            console_warning(f"{len(missed)} design x test rows miss their target: " + "; ".join(
                f"{r.test} {r.measure} {r.estimate:.3f} ({r.seeds} seeds, {r.orders} orders, {r.families}, {r.noise})"
                for r in missed.itertuples()))  # fmt: skip
    if fmt != "table":
        print_frame(table, fmt, "calibration")
    if out is not None:
        table.to_csv(out, index=False)
        say(f"written to {out}")
