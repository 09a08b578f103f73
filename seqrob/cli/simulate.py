"""``seqrob simulate``: runs drawn from a known truth (a thin wrapper of
:func:`seqrob.warehouse.simulate.simulate` and :func:`~seqrob.warehouse.simulate.write`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from seqrob.cli._common import WaitOption, console

_DEFAULTS = {"base": 0.70, "language_sd": 0.05, "seed_sd": 0.01, "run_sd": 0.01, "residual_sd": 0.005}


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Folder to write scores, predictions and truth.json into.")
    ] = None,
    db: Annotated[
        Optional[Path],
        typer.Option(
            "--db",
            help="Warehouse file to store the runs in; the truth goes beside it, named after it and the experiment.",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="Files for --out: parquet, csv or jsonl.")] = "parquet",
    orders: Annotated[
        str, typer.Option(help="Orders, comma-separated; 'none' is the baseline.")
    ] = "none,nli>qa,qa>nli",
    seeds: Annotated[int, typer.Option(help="Seeds per order (seed values 1..N).")] = 6,
    languages: Annotated[
        Optional[str],
        typer.Option(help="Language codes, comma-separated (default: 30 XTREME languages in 12 families)."),
    ] = None,
    family: Annotated[
        Optional[list[str]],
        typer.Option("--family", help="Family of a language: --family xx=Family (repeatable; default: seqrob's metadata)."),
    ] = None,
    effect: Annotated[
        Optional[list[str]],
        typer.Option(
            "--effect",
            help="Planted difference from the baseline: --effect 'nli>qa:Uralic=0.05' (repeatable; family '*' = all; "
            "applies to every task and method; with --methods, 'prompt:nli>qa:Uralic=0.05' under one method only).",
        ),
    ] = None,
    base: Annotated[float, typer.Option(help="Baseline probability of a correct answer.")] = _DEFAULTS["base"],
    language_sd: Annotated[float, typer.Option(help="SD of the language effect.")] = _DEFAULTS["language_sd"],
    seed_sd: Annotated[float, typer.Option(help="SD of the seed effect (shared by all orders of a seed).")] = _DEFAULTS[
        "seed_sd"
    ],
    run_sd: Annotated[
        Optional[list[str]],
        typer.Option(
            "--run-sd",
            help="SD of the run effect: a number for every order, and/or ORDER=SD for one (repeatable; default 0.01); "
            "with --methods also METHOD=SD and METHOD:ORDER=SD (most specific wins: METHOD:ORDER > METHOD > ORDER).",
        ),
    ] = None,
    residual_sd: Annotated[float, typer.Option(help="SD of the run x language effect.")] = _DEFAULTS["residual_sd"],
    n_examples: Annotated[int, typer.Option(help="Examples per language (shared by all runs).")] = 200,
    example_correlation: Annotated[
        float, typer.Option(help="How much of an outcome is the example's difficulty, in [0, 1).")
    ] = 0.5,
    outcomes: Annotated[
        bool, typer.Option("--outcomes/--no-outcomes", help="Keep per-example outcomes (predictions).")
    ] = True,
    task: Annotated[
        Optional[list[str]], typer.Option("--task", help="Target task (repeatable; default: target).")
    ] = None,
    metric: Annotated[str, typer.Option(help="Metric name written into the scores.")] = "accuracy",
    experiment: Annotated[str, typer.Option(help="Experiment name (and run_id prefix).")] = "simulated",
    method: Annotated[
        str,
        typer.Option(
            help="Method written into the scores; with --methods, the reference method (default: the first of --methods)."
        ),
    ] = "finetune",
    methods: Annotated[
        Optional[str],
        typer.Option(
            "--methods",
            help="Several methods, comma-separated (--methods finetune,prompt): each runs every order with the same seeds.",
            show_default=False,
        ),
    ] = None,
    method_effect: Annotated[
        Optional[list[str]],
        typer.Option(
            "--method-effect",
            help="Planted difference of a method from the reference method, in every order: --method-effect "
            "'prompt=-0.02' or 'prompt:Uralic=-0.02' (repeatable; family '*' = all; applies to every task).",
        ),
    ] = None,
    baseline: Annotated[
        Optional[str], typer.Option(help="Reference order (default: 'none' if listed, else the first order).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 0,
    scale: Annotated[
        str,
        typer.Option(
            help="Scale the terms add up on: probability (clipped) or logit (base is still a probability; "
            "SDs and effects become log-odds)."
        ),
    ] = "probability",
    run_family_sd: Annotated[
        float, typer.Option(help="SD of the run x family effect (a run's luck differs between families).")
    ] = 0.0,
    family_sd_scale: Annotated[
        Optional[list[str]],
        typer.Option(
            "--family-sd-scale",
            help="Multiplier of the run, run x family and run x language SDs in one family: "
            "--family-sd-scale Uralic=4 (repeatable; default 1).",
        ),
    ] = None,
    language_sd_scale: Annotated[
        Optional[list[str]],
        typer.Option(
            "--language-sd-scale",
            help="Multiplier of one language's run x language SD: --language-sd-scale fi=2 (repeatable; default 1).",
        ),
    ] = None,
    run_tail_df: Annotated[
        Optional[float],
        typer.Option(help="Degrees of freedom (> 2) of Student-t run and run x family effects (default: normal)."),
    ] = None,
    outlier_rate: Annotated[
        float, typer.Option(help="Probability in [0, 1] that a run is an outlier run (all its cells shifted).")
    ] = 0.0,
    outlier_shift: Annotated[
        float, typer.Option(help="What an outlier run loses in every cell, on the model's scale.")
    ] = 0.0,
    seeds_per_order: Annotated[
        Optional[list[str]],
        typer.Option(
            "--seeds-per-order",
            help="Keep only an order's first K seeds: --seeds-per-order 'nli>qa=3' (repeatable; default: all).",
        ),
    ] = None,
    missing_cells: Annotated[
        float, typer.Option(help="Share in [0, 1) of run x language cells dropped at random from the output.")
    ] = 0.0,
    replace: Annotated[
        bool, typer.Option(help="With --db: overwrite stored runs of the same run_id whose values differ.")
    ] = False,
    wait: WaitOption = 10.0,
) -> None:
    """Simulate stored runs from a known truth (planted order effects, seed and run noise, shared examples).

    Writes scores, predictions and truth.json to --out, and/or stores the runs in the warehouse --db with the truth beside it (<db stem>.<experiment>.truth.json). The truth records every parameter and drawn effect, so analyses of these runs can be checked against it.

    Further options add noise that analyses typically do not assume: the logit scale (near-ceiling, skewed scores), run x family effects, per-family and per-language SDs, heavy-tailed run effects, outlier runs, unequal seeds per order and missing cells.

    --methods simulates several training methods (fine-tuning against prompt tuning): a seed's effect is shared by every method and order, --method-effect shifts a method in every order, --effect 'METHOD:ORDER:FAMILY=DELTA' plants an order effect under one method, --run-sd METHOD=SD gives a method its own run SD.
    """
    from seqrob.warehouse.errors import InputError
    from seqrob.warehouse.simulate import DEFAULT_LANGUAGES, FORMATS, parse_effect, parse_method_effect, write
    from seqrob.warehouse.simulate import simulate as simulate_runs

    if out is None and db is None:
        raise InputError("nothing to do: no --out and no --db", fix="pass --out DIR to write files, --db FILE to store the runs, or both")
    if out is not None and format_ not in FORMATS:
        raise InputError(f"unknown --format '{format_}'", fix=f"use one of {', '.join(FORMATS)}")
    if db is not None and str(db) == ":memory:":
        raise InputError("--db :memory: would lose the runs on exit", fix="name a warehouse file")
    method_names = _split(methods, "--methods") if methods is not None else None
    effects: dict[tuple, float] = {}
    for text in effect or []:
        key, value = parse_effect(text, methods=method_names or ())
        if key in effects:
            raise InputError(f"--effect gives {':'.join(key)} twice", fix="give each order and family once")
        effects[key] = value
    method_effects: dict = {}
    for text in method_effect or []:
        key, value = parse_method_effect(text)
        key = key if isinstance(key, tuple) else (key, "*")  # METHOD=DELTA is METHOD:*=DELTA
        if key in method_effects:
            raise InputError(f"--method-effect gives {key[0]}:{key[1]} twice", fix="give each method and family once")
        method_effects[key] = value
    order_names = _split(orders, "--orders")
    sim = simulate_runs(
        orders=order_names,
        seeds=seeds,
        languages=_split(languages, "--languages") if languages is not None else DEFAULT_LANGUAGES,
        families=_families(family),
        effects=effects,
        base=base,
        language_sd=language_sd,
        seed_sd=seed_sd,
        run_sd=_run_sd(run_sd, order_names, method_names or ()),
        residual_sd=residual_sd,
        n_examples=n_examples,
        example_correlation=example_correlation,
        outcomes=outcomes,
        tasks=tuple(task) if task else ("target",),
        metric=metric,
        experiment=experiment,
        method=method,
        seed=seed,
        baseline=baseline,
        scale=scale,
        run_family_sd=run_family_sd,
        family_sd_scale=_assignments(family_sd_scale, "--family-sd-scale", "Uralic=4", float),
        language_sd_scale=_assignments(language_sd_scale, "--language-sd-scale", "fi=2", float),
        run_tail_df=run_tail_df,
        outlier_rate=outlier_rate,
        outlier_shift=outlier_shift,
        seeds_per_order=_assignments(seeds_per_order, "--seeds-per-order", "'nli>qa=3'", int),
        missing_cells=missing_cells,
        methods=method_names,
        method_effects=method_effects or None,
    )
    truth = sim.truth
    n_runs = sum(truth.seeds_per_order.values()) * len(truth.methods)
    counts = sorted(set(truth.seeds_per_order.values()))
    per_order = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    per_method = f"{len(truth.methods)} methods x " if len(truth.methods) > 1 else ""
    n_predictions = 0 if sim.predictions is None else len(sim.predictions)
    n_missing = int(truth.cells["missing"].sum())
    console.print(
        f"simulated {n_runs} runs ({per_method}{len(truth.orders)} orders x {per_order} seeds), "
        f"{len(truth.tasks)} task(s), {len(truth.languages)} languages: "
        f"{len(sim.scores):,} score rows, {n_predictions:,} prediction rows; "
        f"{truth.n_clipped} of {len(truth.cells):,} cells clipped"
        + (f", {n_missing:,} missing" if n_missing else ""),
        markup=False,
        highlight=False,
    )
    if out is not None:
        paths = write(sim, out, format=format_)
        for name, path in paths.items():
            console.print(f"wrote {name}: {path}", markup=False, highlight=False)
    if db is not None:
        from seqrob.warehouse import Warehouse

        with Warehouse(db, wait=wait) as wh:
            results = wh.ingest_frames(scores=sim.scores, predictions=sim.predictions, source="simulate", replace=replace)
        # The truth is written only once the runs are stored, so it never describes runs that are not there.
        truth_path = truth.to_json(db.with_name(f"{db.stem}.{truth.experiment}.truth.json"))
        stored = int(results["rows_stored"].sum()) if "rows_stored" in getattr(results, "columns", ()) else None
        what = f"stored {stored:,} rows in {db}" if stored is not None else f"stored the runs in {db}"
        console.print(what, markup=False, highlight=False)
        console.print(f"wrote truth: {truth_path}", markup=False, highlight=False)


def _split(text: str, option: str) -> list[str]:
    from seqrob.warehouse.errors import InputError

    names = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise InputError(f"{option} '{text}' has an empty name", fix=f"write {option} as comma-separated names, e.g. a,b,c")
    return names


def _families(items: list[str] | None) -> dict[str, str] | None:
    from seqrob.warehouse.errors import InputError

    if not items:
        return None
    found: dict[str, str] = {}
    for text in items:
        code, eq, family = text.partition("=")
        if not eq or not code.strip() or not family.strip():
            raise InputError(f"--family '{text}' is not CODE=FAMILY", fix="write it like --family fi=Uralic")
        found[code.strip()] = family.strip()
    return found


def _assignments(items: list[str] | None, option: str, example: str, kind: type) -> dict | None:
    """``NAME=NUMBER`` options (``--family-sd-scale Uralic=4``) as a dict; None when not given.

    Names are split at the last ``=`` (order names may hold ``>``); unknown names are
    left in for simulate() to reject with the names of the design.
    """
    from seqrob.warehouse.errors import InputError

    if not items:
        return None
    found: dict = {}
    for text in items:
        name, eq, number = text.rpartition("=")
        name = name.strip()
        if not eq or not name:
            raise InputError(f"{option} '{text}' is not NAME=NUMBER", fix=f"write it like {option} {example}")
        try:
            value = kind(number.strip())
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise InputError(f"{option} '{text}': '{number.strip()}' is not {what}", fix=f"write it like {option} {example}") from None
        if kind is float and not math.isfinite(value):
            raise InputError(f"{option} '{text}' is not a finite number", fix=f"write it like {option} {example}")
        if name in found:
            raise InputError(f"{option} gives '{name}' twice", fix="give each name once")
        found[name] = value
    return found


def _run_sd(items: list[str] | None, orders: list[str], methods: list[str] | tuple = ()) -> float | dict:
    """``--run-sd 0.02`` (every order) and/or ``--run-sd 'qa>nli=0.03'`` (one order).

    With ``methods`` also ``--run-sd prompt=0.03`` (one method) and ``--run-sd
    'prompt:qa>nli=0.03'`` (one method x order, keyed ``(method, order)``).
    """
    from seqrob.warehouse.errors import InputError

    fix = "write --run-sd 0.02 or --run-sd 'qa>nli=0.03'" + (" or --run-sd prompt=0.03" if methods else "")
    if not items:
        return _DEFAULTS["run_sd"]
    default: float | None = None
    named: dict = {}
    for text in items:
        name, eq, number = text.rpartition("=")
        name = name.strip()
        try:
            value = float(number)
        except ValueError:
            raise InputError(f"--run-sd '{text}': '{number.strip()}' is not a number", fix=fix) from None
        if not math.isfinite(value):
            raise InputError(f"--run-sd '{text}' is not a finite number", fix=fix)
        method, colon, order = name.partition(":")
        key = (method.strip(), order.strip()) if colon and method.strip() in methods and order.strip() else name
        if not eq:
            if default is not None:
                raise InputError("--run-sd gives two numbers for every order", fix="give one bare number and ORDER=SD for the others")
            default = value
        elif not name:
            raise InputError(f"--run-sd '{text}' names no order", fix="write --run-sd 'qa>nli=0.03'")
        elif key in named:
            raise InputError(f"--run-sd gives '{name}' twice", fix="give each order and method once")
        else:
            named[key] = value
    if not named:
        return default if default is not None else _DEFAULTS["run_sd"]
    rest = default if default is not None else _DEFAULTS["run_sd"]
    # Every order gets the bare number unless named; methods and (method, order) pairs
    # take precedence in simulate(). An unknown name is left in for simulate() to
    # reject with the lists of orders and methods.
    return {**{order: rest for order in orders}, **named}
