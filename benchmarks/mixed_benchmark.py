"""Mixed-model fit time on 10,000 score rows: seqrob vs statsmodels MixedLM vs lme4.

The model is ``score ~ order * family + (1|seed) + (1|seed:order) + (1|language)``
fitted by ML on a simulation of 4 orders x 25 seeds x 100 languages (10 families).
Prints wall time (median of --repeat fits) and the log-likelihood of each fitter, in
the data's units. Target: seqrob under 1 s and no slower than lme4 (about 1.2 s).

    python benchmarks/mixed_benchmark.py
    python benchmarks/mixed_benchmark.py --orders 3 --seeds 10 --languages 333
    python benchmarks/mixed_benchmark.py --no-statsmodels --no-r

statsmodels is fitted on the 0-100 scale (on proportions it warns about the boundary)
and its log-likelihood is moved back by the Jacobian n log 100. lme4 runs in a child
``Rscript`` (when R and lme4 are installed), timing ``lmer()`` alone.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from seqrob.analysis.mixed import fit_mixed
from seqrob.warehouse.simulate import simulate

_R = r"""
suppressPackageStartupMessages(library(lme4))
d <- read.csv(commandArgs(trailingOnly = TRUE)[1], stringsAsFactors = FALSE)
d$order <- factor(d$order, levels = unique(c("none", d$order)))
d$family <- factor(d$family, levels = unique(d$family))
d$seed <- factor(d$seed); d$language <- factor(d$language)
f <- score ~ order * family + (1|seed) + (1|seed:order) + (1|language)
times <- c()
for (i in seq_len(as.integer(commandArgs(trailingOnly = TRUE)[2]))) {
  t <- system.time(m <- lmer(f, data = d, REML = FALSE))[["elapsed"]]
  times <- c(times, t)
}
cat(median(times), sprintf("%.10f", as.numeric(logLik(m))), "\n")
"""


def _data(orders: int, seeds: int, languages: int, families: int) -> pd.DataFrame:
    known = ("none", "nli>qa", "qa>nli", "qa", "nli", "mlm")
    names = known[:orders] if orders <= len(known) else ["none", *(f"o{i}" for i in range(1, orders))]
    codes = [f"l{i:03d}" for i in range(languages)]
    family_of = {code: f"family{i % families}" for i, code in enumerate(codes)}
    sim = simulate(orders=names, seeds=seeds, languages=codes, families=family_of, outcomes=False, seed=0)
    return sim.scores[["order", "seed", "language", "family", "score"]]


def _time(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _statsmodels(data: pd.DataFrame) -> float:
    import statsmodels.formula.api as smf

    points = data.assign(y=data["score"] * 100, run=data["order"] + "-" + data["seed"].astype(str), g=1)
    model = smf.mixedlm(
        "y ~ C(order) * C(family)", points, groups="g", re_formula="0",
        vc_formula={"seed": "0 + C(seed)", "run": "0 + C(run)", "language": "0 + C(language)"},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=False, method=["lbfgs"])
    return result.llf + len(points) * math.log(100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--languages", type=int, default=100)
    parser.add_argument("--families", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="fits per fitter (median time)")
    parser.add_argument("--no-statsmodels", action="store_true")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args(argv)

    data = _data(args.orders, args.seeds, args.languages, args.families)
    q = args.seeds + args.orders * args.seeds + args.languages
    print(f"{len(data):,} scores: {args.orders} orders x {args.seeds} seeds x {args.languages} languages "
          f"({args.families} families); {q} random effects")  # fmt: skip
    print(f"{'fitter':<34} {'time (s)':>9} {'log-likelihood':>18}")

    seconds, fit = _time(lambda: fit_mixed(data, method="ML"), args.repeat)
    print(f"{'seqrob fit_mixed (ML)':<34} {seconds:>9.3f} {fit.log_likelihood:>18.6f}")
    seconds, reml = _time(lambda: fit_mixed(data), args.repeat)
    print(f"{'seqrob fit_mixed (REML)':<34} {seconds:>9.3f} {reml.log_likelihood:>18.6f}   (REML criterion)")

    if not args.no_statsmodels:
        seconds, llf = _time(lambda: _statsmodels(data), 1)
        print(f"{'statsmodels MixedLM (ML, 1 group)':<34} {seconds:>9.3f} {llf:>18.6f}")

    if not args.no_r:
        if shutil.which("Rscript") is None:
            print("lme4: Rscript not found (apt-get install r-base-core r-cran-lme4)")
        else:
            with tempfile.TemporaryDirectory() as folder:
                csv, script = Path(folder) / "data.csv", Path(folder) / "fit.R"
                data.to_csv(csv, index=False)
                script.write_text(_R)
                out = subprocess.run(["Rscript", str(script), str(csv), str(args.repeat)], capture_output=True,
                                     text=True, check=False)  # fmt: skip
                if out.returncode != 0:
                    print(f"lme4 failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                else:
                    seconds, loglik = (float(x) for x in out.stdout.split())
                    print(f"{'lme4 lmer (ML, nloptwrap)':<34} {seconds:>9.3f} {loglik:>18.6f}")


if __name__ == "__main__":
    main()
