"""``seqrob analyze significance|power``: thin wrappers of ``seqrob.analysis``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from seqrob.cli._common import DbOption, WaitOption, console, console_warning
from seqrob.cli.warehouse import frame_table

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


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Result rows for reading on a terminal: numbers rounded, one interval column."""

    def interval(row) -> str:
        if pd.isna(row.estimate):
            return ""
        text = f"{row.estimate:+.3f}"
        if pd.notna(row.ci_low) and pd.notna(row.ci_high):
            text += f" [{row.ci_low:+.3f}, {row.ci_high:+.3f}]"
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
            "estimate [CI]": [interval(r) for r in frame.itertuples()],
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
    json_: Annotated[Optional[Path], typer.Option("--json", help="Also write the analysis as JSON here.")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Print every result row, not only the tests.")] = False,
    wait: WaitOption = 10.0,
) -> None:
    """Tests over seeds of order x language family (contrasts, order tests, spread); verdicts first."""
    from seqrob.analysis.significance import analyze
    from seqrob.warehouse import Warehouse

    with Warehouse(db, wait=wait) as wh:
        outcome = analyze(wh, task=task, metric=metric, experiment=experiment, method=method, baseline=baseline,
                          alpha=alpha, correction=correction, n_boot=n_boot, seed=seed, effect=effect)  # fmt: skip
        path = wh.path
    console.rule("verdict")
    for sentence in outcome.verdicts:
        console.print(sentence, markup=False, highlight=False)
    if outcome.cautions:
        console.rule("can these verdicts be trusted?")
        for sentence in outcome.cautions:
            console.print(f"! {sentence}", markup=False, highlight=False)
    results = outcome.results
    for (task_name, metric_name), rows in results.groupby(["task", "metric"], sort=False):
        shown = rows if all_rows else rows[rows["test"].isin(_SHOWN)]
        console.print(frame_table(_rounded(shown), f"{task_name} {metric_name}: tests (details: --json, --all)"))
    for note in outcome.warnings:
        console_warning(note)
    console.print(
        f"stored as analysis {outcome.analysis_id} in {path}"
        + (f"; JSON: {outcome.to_json(json_)}" if json_ else ""),
        markup=False,
        highlight=False,
    )


@group.command("power")
def power_command(
    effect: Annotated[float, typer.Option(help="Order difference to detect, in the metric's units (0.01 = 1 point).")],
    db: DbOption = None,
    task: TaskOption = None,
    metric: MetricOption = None,
    experiment: ExperimentOption = None,
    baseline: BaselineOption = "none",
    alpha: Annotated[float, typer.Option(help="Two-sided level of the test.")] = 0.05,
    target: Annotated[float, typer.Option("--power", help="Target power.")] = 0.80,
    sd_ratio: Annotated[float, typer.Option(help="SD ratio the variance test should detect.")] = 2.0,
    wait: WaitOption = 10.0,
) -> None:
    """Seeds per order needed to detect an order effect, from the fitted variance components."""
    from seqrob.analysis.significance import power_table
    from seqrob.warehouse import Warehouse

    with Warehouse(db, read_only=True, wait=wait) as wh:
        table = power_table(wh, effect=effect, task=task, metric=metric, experiment=experiment,
                            baseline=baseline, alpha=alpha, power=target, sd_ratio=sd_ratio)  # fmt: skip
    for (task_name, metric_name), rows in table.groupby(["task", "metric"], sort=False):
        shown = rows[["family", "sd_difference", "seeds_needed", "seeds_needed_variance", "seeds_now"]].rename(
            columns={"sd_difference": "SD of diff.", "seeds_needed": "seeds (mean)",
                     "seeds_needed_variance": f"seeds (SD x{sd_ratio:g})", "seeds_now": "now"})  # fmt: skip
        level = rows["level"].iloc[0]
        console.print(frame_table(shown, f"{task_name} {metric_name}: seeds per order for {target:.0%} power to detect "
                                         f"{effect:g} (t over seeds at alpha {level:.2g}, Holm's first step) and an "
                                         f"SD ratio of {sd_ratio:g}"))  # fmt: skip


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
        str, typer.Option(help="Noise structures of the grid: model, run_x_family, outliers, ceiling, unbalanced.")
    ] = "model,run_x_family,outliers,ceiling,unbalanced",
    alpha: Annotated[float, typer.Option(help="Level of the tests; intervals are 1 - alpha.")] = 0.05,
    workers: Annotated[int, typer.Option(help="Processes to spread the work over.", min=1)] = 1,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the table as CSV here.")] = None,
    wait: WaitOption = 10.0,
) -> None:
    """Type-I error and CI coverage of the tests: on simulations from a known truth, or on --db's own runs."""
    from seqrob.warehouse.errors import InputError

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

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
        with Warehouse(db, wait=wait) as wh:
            table, analysis_id = calibrate_warehouse(wh, experiment=experiment, n=n, alpha=alpha, seed=seed,
                                                     workers=workers, backend=backend, progress=say)  # fmt: skip
        for (task_name, metric_name), rows in table.groupby(["task", "metric"], sort=False):
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
        console.print(frame_table(shown, f"calibration at alpha = {alpha:g} (targets: type I 0.04-0.06, coverage "
                                         "0.93-0.97, family-wise <= alpha)"))  # fmt: skip
        missed = table[table["status"].str.startswith("missed")]
        if len(missed):
            console_warning(f"{len(missed)} design x test rows miss their target: " + "; ".join(
                f"{r.test} {r.measure} {r.estimate:.3f} ({r.seeds} seeds, {r.orders} orders, {r.families}, {r.noise})"
                for r in missed.itertuples()))  # fmt: skip
    if out is not None:
        table.to_csv(out, index=False)
        say(f"written to {out}")
