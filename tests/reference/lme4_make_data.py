"""Write the data sets that lme4_reference.R fits (run from the repository root).

    python tests/reference/lme4_make_data.py && Rscript tests/reference/lme4_reference.R tests/reference

Each is a seqrob simulation (``seqrob.warehouse.simulate.simulate``), written as CSV
with the columns the mixed model uses: order, seed, language, family, score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate

HERE = Path(__file__).resolve().parent
COLUMNS = ["order", "seed", "language", "family", "score"]
TWELVE = ["en", "de", "fr", "es", "hi", "fi", "et", "hu", "ta", "te", "ja", "ko"]


def datasets() -> dict:
    # null: no order effect, run-level noise that (1|seed)+(1|language) mistakes for one.
    null = simulate(seeds=5, families=DEFAULT_FAMILIES, run_sd=0.02, outcomes=False, seed=11).scores
    # planted: a 5-point effect of nli>qa in Uralic; run variance differs by order.
    planted = simulate(
        seeds=4, languages=TWELVE, families=DEFAULT_FAMILIES, effects={("nli>qa", "Uralic"): 0.05},
        run_sd={"none": 0.005, "nli>qa": 0.03, "qa>nli": 0.01}, outcomes=False, seed=12,
    ).scores  # fmt: skip
    # unbalanced: four orders, 10% of scores missing at random, and no qa>nli run scored in Uralic.
    orders = ("none", "nli>qa", "qa>nli", "qa")
    full = simulate(orders=orders, seeds=4, languages=TWELVE, families=DEFAULT_FAMILIES, outcomes=False, seed=13).scores
    rng = np.random.default_rng(13)
    keep = rng.random(len(full)) > 0.10
    keep &= ~((full["order"] == "qa>nli") & (full["family"] == "Uralic")).to_numpy()
    unbalanced = full[keep]
    return {"null": null, "planted": planted, "unbalanced": unbalanced}


def main() -> None:
    for name, frame in datasets().items():
        frame[COLUMNS].to_csv(HERE / f"lme4_data_{name}.csv", index=False)


if __name__ == "__main__":
    main()
