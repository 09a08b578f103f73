"""The method questions (issue 13): does the training method change the score, its spread,
or order's effect? Checked against scipy's paired t on hand-computed per-seed differences,
and end to end through analyze, the warehouse, the terminal and the report."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seqrob.analysis import methods
from seqrob.analysis.findings import CANNOT_TELL, FOUND
from seqrob.analysis.significance import analyze
from seqrob.warehouse import Warehouse

FAMILIES = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C"}
ORDERS = ("none", "x>y", "y>x")


def runs(*, seeds=6, method_shift=None, interaction=None, run_sd=None, seed=0) -> pd.DataFrame:
    """Long scores: 2 methods x 3 orders x ``seeds`` seeds x 5 languages in 3 families.

    Seed luck is shared by every pipeline of a seed; ``method_shift[family]`` moves prompt
    tuning in a family; ``interaction[family]`` moves ``x>y`` under prompt tuning only;
    ``run_sd[method]`` is that method's run noise.
    """
    rng = np.random.default_rng(seed)
    method_shift, interaction = method_shift or {}, interaction or {}
    run_sd = run_sd or {"finetune": 0.01, "prompt": 0.01}
    languages = list(FAMILIES)
    base = dict(zip(languages, rng.normal(0.7, 0.04, len(languages)), strict=True))
    rows = []
    for s in range(1, seeds + 1):
        luck = rng.normal(0, 0.01)
        for method in ("finetune", "prompt"):
            for order in ORDERS:
                run = rng.normal(0, run_sd[method])
                for language in languages:
                    family = FAMILIES[language]
                    score = base[language] + luck + run + rng.normal(0, 0.004)
                    if method == "prompt":
                        score += method_shift.get(family, 0.0)
                        if order == "x>y":
                            score += interaction.get(family, 0.0)
                    rows.append(dict(run_id=f"{method}-{order}-{s}", experiment="e", method=method, order=order, seed=s,
                                     task="t", metric="accuracy", language=language, family=family, score=score))
    return pd.DataFrame(rows)


def _family_means(data: pd.DataFrame) -> pd.DataFrame:
    return data.groupby(["method", "order", "seed", "family"])["score"].mean().rename("score").reset_index()


def test_method_contrast_is_scipys_paired_t_on_the_order_averaged_per_seed_differences():
    data = runs(method_shift={"A": -0.03})
    frames, _ = methods.method_tests(data, orders=list(ORDERS), confidence=0.95, seed=0)
    rows = pd.concat(frames)
    means = _family_means(data).groupby(["method", "seed", "family"])["score"].mean().unstack("method")
    for family in ("A", "B", "C"):
        part = means.xs(family, level="family")
        expected = stats.ttest_rel(part["prompt"], part["finetune"])
        ci = expected.confidence_interval(0.95)
        row = rows[(rows["test"] == methods.METHOD_CONTRAST) & (rows["family"] == family)].iloc[0]
        assert row["term"] == "prompt vs finetune"
        assert row["estimate"] == pytest.approx((part["prompt"] - part["finetune"]).mean(), abs=1e-12)
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
        assert row["df"] == 5 and row["interval"] == "paired t over seeds"


def test_order_by_method_contrast_is_the_paired_t_of_differences_of_differences():
    data = runs(interaction={"B": 0.04})
    frames, _ = methods.method_tests(data, orders=list(ORDERS), confidence=0.95, seed=0)
    rows = pd.concat(frames)
    cells = _family_means(data).set_index(["method", "order", "seed", "family"])["score"]
    for family in ("A", "B", "C"):
        d = {m: cells.xs((m, "x>y"), level=["method", "order"]).xs(family, level="family")
             - cells.xs((m, "none"), level=["method", "order"]).xs(family, level="family") for m in ("finetune", "prompt")}
        expected = stats.ttest_rel(d["prompt"], d["finetune"])
        row = rows[(rows["test"] == methods.ORDER_METHOD_CONTRAST) & (rows["family"] == family)
                   & (rows["term"] == "x>y vs none: prompt vs finetune")].iloc[0]  # fmt: skip
        assert row["estimate"] == pytest.approx((d["prompt"] - d["finetune"]).mean(), abs=1e-12)
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    terms = set(rows.loc[rows["test"] == methods.ORDER_METHOD_CONTRAST, "term"])
    assert terms == {f"{a} vs {b}: prompt vs finetune" for a, b in (("x>y", "none"), ("y>x", "none"), ("y>x", "x>y"))}


def test_only_seeds_with_every_order_under_every_method_are_compared():
    data = runs(seeds=5)
    data = data[~((data["seed"] == 5) & (data["method"] == "prompt") & (data["order"] == "y>x"))]
    assert methods.complete_seeds(data) == [1, 2, 3, 4]
    frames, _ = methods.method_tests(data, orders=list(ORDERS), confidence=0.95, seed=0)
    rows = pd.concat(frames)
    assert (rows.loc[rows["test"] == methods.METHOD_CONTRAST, "n"] == 4).all()


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _store(tmp_path, data: pd.DataFrame) -> Warehouse:
    wh = Warehouse(tmp_path / "methods.duckdb")
    wh.ingest_frames(scores=data.drop(columns=["family"]), families=_families_file(tmp_path))
    return wh


def _families_file(tmp_path):
    path = tmp_path / "families.csv"
    pd.DataFrame({"code": list(FAMILIES), "family": list(FAMILIES.values())}).to_csv(path, index=False)
    return path


def test_analyze_finds_a_planted_method_effect_and_interaction_and_stores_them(tmp_path, quiet):
    data = runs(seeds=8, method_shift={"A": -0.05}, interaction={"B": 0.05})
    with _store(tmp_path, data) as wh:
        outcome = analyze(wh)
        stored = wh.load_analysis(outcome.analysis_id)
    f = outcome.findings
    compared = f[f["label"] == "t accuracy: methods"]
    assert set(compared["factor"]) == {"method", "order x method"}
    assert compared["method"].isna().all()
    found = compared[compared["status"] == FOUND]
    assert ("A", "method", "score") in set(zip(found["family"], found["factor"], found["question"]))
    assert ("B", "order x method", "x>y vs none: prompt vs finetune") in set(
        zip(found["family"], found["factor"], found["comparison"]))
    assert not ((found["factor"] == "method") & (found["family"] == "C")).any()  # no planted effect there
    # the order findings stay per method, each labelled and kept apart in the results
    assert set(f.loc[f["factor"] == "order", "method"]) == {"finetune", "prompt"}
    assert set(outcome.results["label"]) == {"t accuracy (finetune)", "t accuracy (prompt)", "t accuracy: methods"}
    assert outcome.design["t accuracy: methods"]["seeds"] == 8
    assert len(pd.DataFrame(stored["findings"])) == len(f)


def test_with_5_seeds_spread_between_two_methods_is_cannot_tell_with_its_floor(tmp_path, quiet):
    data = runs(seeds=5, run_sd={"finetune": 0.002, "prompt": 0.05})
    with _store(tmp_path, data) as wh:
        outcome = analyze(wh)
    spread = outcome.findings[(outcome.findings["factor"] == "method") & (outcome.findings["question"] == "spread")]
    assert len(spread) and (spread["status"] == CANNOT_TELL).all()
    assert spread["reason"].str.contains("smallest possible p is 0.0625").all()


def test_a_method_filter_or_one_method_compares_no_methods(tmp_path, quiet):
    data = runs(seeds=4)
    with _store(tmp_path, data) as wh:
        assert (analyze(wh, method="prompt", store=False).findings["factor"] == "order").all()
    with Warehouse(tmp_path / "one.duckdb") as wh:
        wh.ingest_frames(scores=data[data["method"] == "finetune"].drop(columns=["family"]),
                         families=_families_file(tmp_path))  # fmt: skip
        assert (analyze(wh, store=False).findings["factor"] == "order").all()


def test_terminal_and_report_page_1_state_the_method_findings(tmp_path, quiet, capsys):
    from pypdf import PdfReader

    from seqrob.cli import main
    from seqrob.report.findings import statements

    data = runs(seeds=6, method_shift={"A": -0.05})
    with _store(tmp_path, data) as wh:
        outcome = analyze(wh)
    sentences = statements(outcome.findings[outcome.findings["label"] == "t accuracy: methods"], prefix=False)
    assert any(s.startswith("in A, prompt scores") and "lower than finetune, averaged over the orders" in s
               for s in sentences)  # fmt: skip
    main(["analyze", "significance", "--db", str(tmp_path / "methods.duckdb")])
    printed = " ".join(capsys.readouterr().out.split())
    assert "t accuracy: methods" in printed and "prompt scores" in printed and "compared" in printed
    pdf = tmp_path / "r.pdf"
    main(["report", "--db", str(tmp_path / "methods.duckdb"), "--out", str(pdf), "--no-html"])
    reader = PdfReader(pdf)
    first = " ".join(" ".join(reader.pages[i].extract_text().split()) for i in range(2))
    assert "t accuracy: methods" in first
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert "Methods compared" in text and "Training methods compared" in text


def test_method_relabelling_swaps_methods_within_seed_and_order_only():
    from seqrob.analysis.calibrate import distinct_method_relabellings, relabel_methods_within_runs

    data = runs(seeds=4)
    relabelled = relabel_methods_within_runs(data, np.random.default_rng(3))
    keys = ["run_id", "seed", "order", "language", "score"]
    pd.testing.assert_frame_equal(relabelled[keys], data[keys])  # scores, seeds and orders untouched
    per_cell = relabelled.drop_duplicates("run_id").groupby(["seed", "order"])["method"].agg(sorted)
    assert (per_cell.map(tuple) == ("finetune", "prompt")).all()
    assert (relabelled["method"] != data["method"]).any()
    assert distinct_method_relabellings(data) == 2 ** (4 * 3) // 2  # each seed x order swaps or not, up to renaming


def test_calibration_on_these_runs_covers_the_method_tests(quiet, monkeypatch):
    from seqrob.analysis import calibrate

    # The order nulls of each method are calibrate_data's own, tested in test_calibration; here only the methods'.
    monkeypatch.setattr(calibrate, "distinct_relabellings", lambda scores: 1)
    table = calibrate.calibrate_data(runs(seeds=4, method_shift={"A": -0.05}), n=10, seed=1)
    assert (table.loc[table["method"] != "methods compared", "status"] == "too few relabellings").all()
    compared = table[table["method"] == "methods compared"]
    assert {"method_contrast", "order_method_contrast", "method_variance (permutation)"} <= set(compared["test"])
    assert (compared["relabellings"] == 2 ** 12 // 2).all()
    spread = compared[compared["test"] == "method_variance (permutation)"]
    assert (spread["status"] == "refuses").all()  # 4 seeds: its smallest p is 1/8
    assert set(table["method"]) == {"finetune", "prompt", "methods compared"}
