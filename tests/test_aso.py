"""ASO against deepsig (Ulmer et al. 2022), through stored reference values.

tests/reference/aso_reference.json was written by tests/reference/aso_reference.py with
deepsig 1.2.8 (deepsig is not needed here). Three checks per case:

- the violation ratio equals deepsig's ``compute_violation_ratio`` (deterministic);
- fed deepsig's own bootstrap draws (legacy ``np.random.seed(seed + i)`` uniforms, as
  deepsig draws them), the vectorised computation reproduces deepsig's eps_min exactly;
- with its own RNG, :func:`aso` agrees with deepsig within Monte Carlo error.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrob.analysis.aso import _aso, aso, aso_table
from seqrob.analysis.results import COLUMNS
from seqrob.warehouse.errors import InputError
from seqrob.warehouse.simulate import simulate

REFERENCE = json.loads((Path(__file__).parent / "reference" / "aso_reference.json").read_text(encoding="utf-8"))
CASES = REFERENCE["cases"]
IDS = [f"{c['name']}-{'-'.join(f'{k}={v:.4g}' for k, v in c['deepsig_kwargs'].items()) or 'defaults'}" for c in CASES]
B = REFERENCE["defaults"]["num_bootstrap_iterations"]
DT = REFERENCE["defaults"]["dt"]


def deepsig_confidence(kwargs: dict) -> float:
    """The confidence deepsig uses: confidence_level, raised by (1 - c) / m for m comparisons."""
    confidence = kwargs.get("confidence_level", 0.95)
    m = kwargs.get("num_comparisons", 1)
    return confidence + (1 - confidence) / m if m > 1 else confidence


def deepsig_draws(n_a: int, n_b: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the sorted scores that deepsig's bootstrap draws with ``seed``."""
    index_a, index_b = np.empty((B, n_a), np.int64), np.empty((B, n_b), np.int64)
    state = np.random.RandomState()
    for i in range(B):
        state.seed(seed + i + 1)  # deepsig: np.random.seed(seed + offset), offset 1..B
        u_a, u_b = state.uniform(0, 1, n_a), state.uniform(0, 1, n_b)
        index_a[i] = np.clip(np.ceil(n_a * u_a).astype(np.int64) - 1, 0, n_a - 1)
        index_b[i] = np.clip(np.ceil(n_b * u_b).astype(np.int64) - 1, 0, n_b - 1)
    return index_a, index_b


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_violation_ratio_equals_deepsig(case):
    a, b = np.array(case["scores_a"]), np.array(case["scores_b"])
    result = _aso(a, b, confidence=0.95, n_boot=2, dt=DT, rng=np.random.default_rng(0))
    assert result["violation_ratio"] == pytest.approx(case["violation_ratio"], abs=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_deepsig_draws_reproduce_deepsig_exactly(case):
    a, b = np.sort(case["scores_a"]), np.sort(case["scores_b"])
    for seed, expected in zip(case["seeds"], case["eps_min"]):
        draws = deepsig_draws(a.size, b.size, seed)
        ours = _aso(a, b, confidence=deepsig_confidence(case["deepsig_kwargs"]), n_boot=B, dt=DT, rng=None, draws=draws)
        assert ours["eps_min"] == pytest.approx(expected, abs=1e-12)


def _ours(case: dict, seeds=range(20)) -> np.ndarray:
    """aso() on the case, with seqrob's meaning of the options deepsig was given."""
    kwargs = case["deepsig_kwargs"]
    a, b = case["scores_a"], case["scores_b"]
    if kwargs.get("num_comparisons") == 3:
        # deepsig's num_comparisons=3 is confidence 0.95 + 0.05 / 3, not Bonferroni.
        options = {"confidence": deepsig_confidence(kwargs)}
    else:
        options = {
            "confidence": kwargs.get("confidence_level", 0.95),
            "num_comparisons": kwargs.get("num_comparisons", 1),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([aso(a, b, n_boot=B, dt=DT, seed=s, **options) for s in seeds])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_aso_agrees_with_deepsig_within_monte_carlo_error(case):
    ours = _ours(case)
    theirs = np.array(case["eps_min"])
    # Same algorithm, same B: the Monte Carlo SD of one call is estimated from our 20 calls.
    tolerance = 4 * ours.std(ddof=1) * np.sqrt(1 / ours.size + 1 / theirs.size) + 1e-9
    assert abs(ours.mean() - theirs.mean()) <= tolerance, (ours.mean(), theirs.mean(), tolerance)


def test_bonferroni_is_one_minus_alpha_over_m():
    overlap = {tuple(c["deepsig_kwargs"].items()): c for c in CASES if c["name"] == "overlap"}
    corrected = overlap[(("confidence_level", 1 - 0.05 / 3),)]
    deepsig_three = overlap[(("num_comparisons", 3),)]
    a, b = corrected["scores_a"], corrected["scores_b"]
    ours = np.array([aso(a, b, num_comparisons=3, seed=s) for s in range(20)])
    # Equal to deepsig at confidence 1 - 0.05/3 ...
    assert abs(ours.mean() - np.mean(corrected["eps_min"])) <= 4 * ours.std(ddof=1) * np.sqrt(1 / 20 + 1 / 3)
    # ... and above deepsig's num_comparisons=3 (confidence 0.9667 only).
    assert ours.mean() > np.mean(deepsig_three["eps_min"]) + 0.01
    # For m = 2 the two formulas agree (case "num_comparisons=2" above).


def test_aso_is_fast_enough_to_vectorise_over_bootstrap_replicates():
    # Not a timing test: the bootstrap is one array computation, so 10,000 replicates of
    # a 10 vs 10 comparison go through in one call and agree with 1,000.
    case = CASES[2]
    many = aso(case["scores_a"], case["scores_b"], n_boot=10_000, seed=1)
    assert many == pytest.approx(np.mean(case["eps_min"]), abs=0.03)


def test_aso_table_rows_directions_and_p_values():
    sim = simulate(seeds=10, languages=("fi", "et", "de"), outcomes=False,
                   families={"fi": "Uralic", "et": "Uralic", "de": "Indo-European"},
                   effects={("nli>qa", "Uralic"): 0.05}, seed=2)  # fmt: skip
    table = aso_table(sim.scores, seed=0, bonferroni=True)
    assert tuple(table.columns) == COLUMNS and set(table["test"]) == {"aso"}
    assert len(table) == 3 * 2 * 3  # pairs x directions x (2 families + all)
    uralic = table[table["family"] == "Uralic"].set_index("term")
    assert uralic.loc["nli>qa vs none", "statistic"] < 0.5 < uralic.loc["none vs nli>qa", "statistic"]
    forward, backward = uralic.loc["nli>qa vs none", "estimate"], uralic.loc["none vs nli>qa", "estimate"]
    assert forward + backward == pytest.approx(1.0, abs=0.05)
    assert (table["statistic"] == table["ci_high"]).all() and (table["ci_low"] == 0).all()
    assert table["method"].str.contains("confidence 0.9833 \\(Bonferroni over 3 pairs\\)").all()
    # p < 1 - confidence exactly when eps_min (at that confidence) is below the threshold.
    plain = aso_table(sim.scores, seed=0, confidence=0.95)
    unclipped = plain[(plain["statistic"] > 0) & (plain["statistic"] < 1)]
    assert ((unclipped["p_value"] < 0.05) == (unclipped["statistic"] < 0.5)).all()


def test_bad_input_is_named():
    with pytest.raises(InputError, match="scores_a"):
        aso([], [0.1, 0.2])
    with pytest.raises(InputError, match="confidence"):
        aso([0.1], [0.2], confidence=1.5)
    with pytest.raises(InputError, match="threshold"):
        aso_table(pd.DataFrame({"order": ["a"], "seed": [1], "language": ["fi"], "family": ["U"], "score": [0.5]}),
                  threshold=2)  # fmt: skip
