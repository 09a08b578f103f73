"""Write the extra data set that lmertest_reference.R tests (run from the repository root).

    python tests/reference/lmertest_make_data.py && Rscript tests/reference/lmertest_reference.R tests/reference

``lmertest_data_few_seeds.csv``: 3 seeds x 4 orders x the 30 XTREME languages in 12
families, no order effect, run-level noise (the design where the order test's
hypothesis spans the run and residual strata). The R script also reads the
``lme4_data_*.csv`` files of lme4_make_data.py.
"""

from __future__ import annotations

from pathlib import Path

from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate

HERE = Path(__file__).resolve().parent
COLUMNS = ["order", "seed", "language", "family", "score"]


def main() -> None:
    few = simulate(orders=("none", "nli>qa", "qa>nli", "ner>nli>qa"), seeds=3, families=DEFAULT_FAMILIES,
                   run_sd=0.02, residual_sd=0.01, outcomes=False, seed=21).scores  # fmt: skip
    few[COLUMNS].to_csv(HERE / "lmertest_data_few_seeds.csv", index=False)


if __name__ == "__main__":
    main()
