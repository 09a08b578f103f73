"""The robustness report (seqrob.report, ``seqrob report``): what it says, from which analysis.

The PDFs are read back with pypdf, so the checks are on the text a reader can search
and copy: the families, the orders, the verdicts with their numbers, the methods and
references, and for a one-seed warehouse what cannot be concluded.
"""

from __future__ import annotations

import dataclasses
import html as html_module
import re

import pytest
from pypdf import PdfReader
from seqrob.warehouse import Warehouse
from seqrob.warehouse.errors import DesignError, InputError
from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate

from seqrob.report import build_report, render_report
from seqrob.report.document import Figure, Heading, Table, Text, write_pdf
from seqrob.report.text import number, p_text

LANGUAGES = ["en", "de", "fr", "fi", "et", "hu", "ta", "te", "ml", "ja"]
PLANTED = {("nli>qa", "Uralic"): 0.10, ("qa>nli", "Dravidian"): -0.09}
N_BOOT = 400  # small: these tests check the report, not the bootstrap


def _simulated(path, *, seeds: int, effects=PLANTED) -> None:
    sim = simulate(seeds=seeds, languages=LANGUAGES, families={code: DEFAULT_FAMILIES[code] for code in LANGUAGES},
                   effects=effects, n_examples=60, seed=11)  # fmt: skip
    with Warehouse(path) as wh:
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)


def _text(pdf) -> str:
    """The PDF's text with whitespace runs collapsed (line breaks fall anywhere)."""
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in PdfReader(str(pdf)).pages))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A 6-seed simulated warehouse with large order effects planted in Uralic and Dravidian, and its report."""
    folder = tmp_path_factory.mktemp("planted")
    db = folder / "planted.duckdb"
    _simulated(db, seeds=6)
    with Warehouse(db) as wh:
        pdf = render_report(wh, folder / "reports" / "robustness.pdf", n_boot=N_BOOT)
        analysis = wh.load_analysis(1)
    return {"db": db, "pdf": pdf, "text": _text(pdf), "analysis": analysis, "first_page": _first_page(pdf)}


def _captions(report) -> list[str]:
    """The captions of the report's tables and figures (``Report.text`` leaves table captions out)."""
    return [block.caption for block in report.blocks if getattr(block, "caption", None)]


def _first_page(pdf) -> str:
    return re.sub(r"\s+", " ", PdfReader(str(pdf)).pages[0].extract_text())


def test_report_names_families_orders_and_methods(planted):
    text = planted["text"]
    for family in ("Indo-European", "Uralic", "Dravidian", "Japonic"):
        assert family in text
    for order in ("none", "nli>qa", "qa>nli"):
        assert order in text
    for section in ("2. Design", "3. Accuracy", "4. Robustness across seeds", "5. Methods", "6. Reproducibility"):
        assert section in text
    for reference in ("Sellam", "Dror", "Holm, S. (1979)", "Bates", "Pitman, E. J. G.", "Brown, M. B. & Forsythe"):
        assert reference in text
    assert "score ~ order * family + (1|seed) + (1|seed:order) + (1|language)" in text
    assert planted["pdf"].with_suffix(".html").exists()


def test_methods_show_the_shipped_calibration_for_the_nearest_design(planted):
    # 6 seeds, 3 orders, 5 families: the nearest simulated design has 5 seeds and the few families.
    text = planted["text"]
    assert re.search(r"closest to this report's \(5 seeds per order, [24] orders, the 'few' set of families\)", text)
    for test in ("contrast", "order_anova", "variance (permutation)", "run_x_family", "ceiling", "family_wise"):
        assert test in text
    assert "No simulation calibration table was given" not in text
    # Not yet calibrated on these runs: page 1 says so and how.
    assert "Can these verdicts be trusted?" in planted["first_page"]
    assert "seqrob analyze calibrate --db" in planted["first_page"]


def test_summary_page_states_the_stored_findings_with_their_numbers(planted):
    first = planted["first_page"]
    findings = planted["analysis"]["findings"]
    score = findings[(findings["question"] == "score") & findings["comparison"].str.contains(" vs ")]
    found = score[score["status"] == "found"]
    assert set(found["family"]) == {"Uralic", "Dravidian"}  # where the simulation planted effects
    for row in found.itertuples():
        first_order, second_order = row.comparison.split(" vs ")
        direction = "higher" if row.estimate > 0 else "lower"
        low, high = (number(v * 100, 1, signed=True) for v in (row.ci_low, row.ci_high))
        assert (f"In {row.family}, {first_order} scores {abs(row.estimate) * 100:.1f} points {direction} than "
                f"{second_order} (95% CI [{low}, {high}], paired t over seeds; Holm-adjusted p "
                f"{p_text(row.p_adjusted, equals=True)})") in first  # fmt: skip
        # and its row of the page-1 table: family, orders, difference [CI], status
        estimate = number(row.estimate * 100, 1, signed=True)
        assert f"{row.family} {row.comparison} {estimate} [{low}, {high}] found" in first
    assert f"No evidence for the other {len(score) - len(found)} comparisons (Holm-adjusted p >= 0.05)" in first
    assert "seeds needed" in first and "SD ratio [CI]" in first


def test_terminal_and_page_one_state_the_same_findings(planted, capsys, tmp_path):
    """The verdict table the terminal prints is, row by row, the table on page 1 of the PDF."""
    import shutil

    from seqrob.cli import main
    from seqrob.cli._common import console

    db = shutil.copy(planted["db"], tmp_path / "copy.duckdb")  # the fixture's warehouse stays as it was

    width = console.width
    console.width = 250  # one table row per line, so it can be read back
    try:
        main(["analyze", "significance", "--db", str(db), "--n-boot", str(N_BOOT)])
    finally:
        console.width = width
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.strip().startswith("family"))
    start = out.splitlines().index(header)
    rows = []
    for line in out.splitlines()[start + 2:]:
        if not line.strip() or line.startswith("\u2500"):  # a blank line or the next rule ends the table
            break
        rows.append(" ".join(re.split(r"\s{2,}", line.strip())))
    assert len(rows) >= 20 and any(" found" in r for r in rows)
    html = html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", planted["pdf"].with_suffix(".html").read_text())))
    for row in rows:
        assert row in planted["first_page"], row
        assert row in html, row  # the HTML report's page 1 too
    sentences = [line[2:] for line in out.splitlines() if line.startswith("- ")]
    assert sentences
    for sentence in sentences:
        assert sentence[0].upper() + sentence[1:] + "." in planted["first_page"]


def test_report_at_alpha_0_1_says_90_percent_everywhere(tmp_path):
    db = tmp_path / "alpha.duckdb"
    _simulated(db, seeds=4)
    with Warehouse(db) as wh:
        report = build_report(wh, n_boot=N_BOOT, alpha=0.1)
        pdf = report.write(tmp_path / "alpha.pdf", html=False)
    first, text = _first_page(pdf), _text(pdf)
    assert "90% CI from paired t over seeds" in first and "\u03b1 = 0.1" in first
    assert "found = Holm-adjusted p < 0.1" in first
    assert "95%" not in text
    assert report.inputs.findings["alpha"].eq(0.1).all()


def test_report_reuses_the_stored_analysis(planted):
    with Warehouse(planted["db"]) as wh:
        before = wh.con.execute("SELECT count(*) FROM analyses").fetchall()[0][0]
        report = build_report(wh, n_boot=N_BOOT)
        after = wh.con.execute("SELECT count(*) FROM analyses").fetchall()[0][0]
    assert report.reused and before == after == 1
    assert [a.analysis_id for a in report.inputs.analyses] == [1]
    with Warehouse(planted["db"]) as wh:  # other options: another analysis is run and stored
        assert not build_report(wh, n_boot=N_BOOT, seed=1).reused
        assert wh.con.execute("SELECT count(*) FROM analyses").fetchall()[0][0] == 2


def test_report_from_a_read_only_warehouse_does_not_store(tmp_path):
    db = tmp_path / "ro.duckdb"
    _simulated(db, seeds=3)
    with Warehouse(db, read_only=True) as wh:
        report = build_report(wh, n_boot=N_BOOT)
        assert report.inputs.analyses[0].analysis_id is None and not report.reused
        assert wh.con.execute("SELECT count(*) FROM analyses").fetchall()[0][0] == 0
        pdf = report.write(tmp_path / "ro.pdf", html=False)
    assert "analysis run for this report" in _text(pdf)
    assert not (tmp_path / "ro.html").exists()


def test_one_seed_report_says_what_cannot_be_concluded(tmp_path):
    db = tmp_path / "one.duckdb"
    _simulated(db, seeds=1)
    with Warehouse(db) as wh:
        pdf = render_report(wh, tmp_path / "one.pdf", n_boot=N_BOOT)
    text, first = _text(pdf), _first_page(pdf)
    assert "Cannot tell whether order matters: 1 seed(s) for some order: order cannot be told from seed noise" in first
    assert "3 or more to test usefully" in first
    assert "No order contrasts were estimated" in text
    assert "no across-seed variation to show" in text
    assert "Not fitted" in text  # the mixed model
    assert "nan" not in text.lower().split()


def test_few_seeds_use_the_seed_level_check(tmp_path):
    db = tmp_path / "three.duckdb"
    _simulated(db, seeds=3)
    with Warehouse(db) as wh:
        report = build_report(wh, n_boot=N_BOOT)
    text = report.text()
    assert "exact sign-flip test inversion: 95% CI" in text and "its p (Holm)" in text
    assert "3 seeds per order: the t over seeds has 2 df" in text
    # The forest plot says what produced its intervals: at 3 seeds the seed-level paired t, not the mixed model.
    forest = report.figures[0]
    assert "lines: 95% CI from paired t over seeds" in forest.caption and "Satterthwaite" not in forest.caption
    assert "paired t over seeds" in forest.figure.axes[0].get_xlabel()
    assert "Few seeds." in text and "exact paired sign-flip test" in text


def test_intervals_are_labelled_by_what_produced_them(planted):
    """Every interval says its kind and level, read from the rows' interval and confidence columns."""
    with Warehouse(planted["db"]) as wh:
        report = build_report(wh, n_boot=N_BOOT)
    results = report.inputs.groups[0].results
    captions = [f.caption for f in report.figures]

    def source(test, pairs_only=False):
        rows = results[(results["test"] == test) & results["interval"].notna()]
        if pairs_only:
            rows = rows[rows["term"].str.contains(" vs ", regex=False)]
        (level, kind), = set(zip(rows["confidence"], rows["interval"]))
        return f"{level * 100:.4g}% CI from {kind}"

    assert source("contrast") == "95% CI from paired t over seeds"
    assert any("Order contrasts per language family" in c and source("contrast") in c for c in captions)
    assert any("SD ratios" in c and source("variance", pairs_only=True) in c for c in captions)
    assert any(f"Across-seed SD per order** (points; {source('sd')})" in c for c in _captions(report))
    # The forest plots carry a legend: which colour is which order, and what a filled marker means.
    legend = [t.get_text() for t in report.figures[0].figure.legends[0].get_texts()]
    assert {"nli>qa", "qa>nli"} <= set(legend) and any("significant" in t for t in legend)


def test_methods_are_generated_from_what_ran(planted):
    text = planted["text"]
    methods = text[text.index("5. Methods"):text.index("6. Reproducibility")]
    # ASO is descriptive: its confidence is not adjusted (no Bonferroni), its p-values are not corrected.
    assert "Bonferroni" not in methods
    assert "Almost stochastic order" in methods and "neither its confidence nor its p-values are adjusted" in methods
    assert "SD-ratio intervals (95% CI from permutation test inversion)" in methods
    assert "not from the bootstrap" in methods
    assert "Greenhouse & Geisser 1959" in methods and "Greenhouse, S. W. & Geisser, S. (1959)" in methods
    assert "Few seeds." not in methods  # 6 seeds: no sign-flip rows, so no paragraph about them
    # The families of tests and their sizes come from the stored columns.
    results = planted["analysis"]["results"]
    families = results.dropna(subset=["correction"]).drop_duplicates("correction_family")
    assert len(families) >= 5
    for r in families.itertuples():
        assert f"{r.correction_family} Holm {int(r.n_corrected)}" in methods
    assert "aso none (descriptive)" in methods


def test_no_code_reads_the_method_prose(planted):
    """The report reads structured columns only: with every row's method text gone, it says the same
    (bar the column that shows that text)."""
    with Warehouse(planted["db"]) as wh:
        report = build_report(wh, n_boot=N_BOOT)
    blind = dataclasses.replace(report.inputs, groups=[
        dataclasses.replace(g, results=g.results.assign(method=None)) for g in report.inputs.groups])  # fmt: skip
    from seqrob.report.render import Report
    from seqrob.report.sections import build

    shown = report.text()
    for method in report.inputs.groups[0].results["method"].dropna().unique():
        shown = shown.replace(method, "\u2013")
    assert Report(blocks=build(blind), inputs=blind).text() == shown


def test_two_orders_without_a_baseline(tmp_path):
    sim = simulate(orders=("nli>qa", "qa>nli"), seeds=3, languages=LANGUAGES[:6],
                   families={code: DEFAULT_FAMILIES[code] for code in LANGUAGES[:6]}, n_examples=30, seed=3)  # fmt: skip
    with Warehouse(tmp_path / "two.duckdb") as wh:
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
        report = build_report(wh, n_boot=N_BOOT)
    text = report.text()
    assert any("right: each other order minus nli>qa" in c for c in _captions(report))  # the first order stands in
    assert any("the intercept is nli>qa in Indo-European" in c for c in _captions(report))
    assert "The fixed effects are nli>qa's mean in Indo-European" in text
    assert "None" not in text.split()


def test_several_experiments_need_a_choice(tmp_path):
    db = tmp_path / "two.duckdb"
    _simulated(db, seeds=3)
    sim = simulate(seeds=3, languages=["en", "de"], families={"en": "Indo-European", "de": "Indo-European"},
                   experiment="other", n_examples=20)  # fmt: skip
    with Warehouse(db) as wh:
        wh.ingest_frames(scores=sim.scores)
        with pytest.raises(DesignError, match="--experiment"):
            build_report(wh, n_boot=N_BOOT)
        report = build_report(wh, experiment="other", n_boot=N_BOOT)
    assert report.inputs.experiment == "other"
    assert {e for g in report.inputs.groups for e in g.scores["experiment"]} == {"other"}


def test_several_tasks_and_methods_get_their_own_sections(tmp_path):
    languages = ["en", "de", "fi", "et"]
    families = {code: DEFAULT_FAMILIES[code] for code in languages}
    tasks = simulate(seeds=3, languages=languages, families=families, tasks=("xnli", "pawsx"), n_examples=20)
    prompt = simulate(seeds=3, languages=languages, families=families, n_examples=20, method="prompt", seed=5)
    for frame in (prompt.scores, prompt.predictions):
        frame["run_id"] = frame["run_id"] + "-prompt"
    with Warehouse(tmp_path / "multi.duckdb") as wh:
        wh.ingest_frames(scores=tasks.scores, predictions=tasks.predictions)
        wh.ingest_frames(scores=prompt.scores, predictions=prompt.predictions)
        report = build_report(wh, n_boot=N_BOOT)
    labels = [g.label for g in report.inputs.groups]
    assert labels == ["pawsx accuracy (finetune)", "xnli accuracy (finetune)", "target accuracy (prompt)"]
    assert len(report.inputs.analyses) == 1  # one analysis; its result rows name their group
    for group in report.inputs.groups:
        assert set(group.results["label"]) == {group.label}
    assert report.inputs.comparisons == []  # no task was run with both methods
    text = report.text()
    for index, label in enumerate(labels, start=1):
        assert f"3.{index} Accuracy: {label}" in text and f"4.{index} Robustness across seeds: {label}" in text


def test_unknown_filter_is_an_input_error(planted):
    with Warehouse(planted["db"]) as wh, pytest.raises(InputError, match="no task 'xnli'"):
        build_report(wh, task="xnli", n_boot=N_BOOT)


def test_empty_warehouse_is_a_design_error(tmp_path):
    with Warehouse(tmp_path / "empty.duckdb") as wh, pytest.raises(DesignError, match="no finished runs"):
        build_report(wh)


# --- the document engine ---------------------------------------------------------------------


def test_long_tables_split_across_pages_and_names_print_as_written(tmp_path):
    rows = [[f"row{i}", "nli>qa & qa<nli", f"{i}"] for i in range(150)]
    blocks = [Heading("Title"), Text("**bold** and *italic* nli>qa"), Table(["name", "order", "n"], rows, caption="Long")]
    pdf = write_pdf(blocks, tmp_path / "t.pdf", title="t", footer="f")
    reader = PdfReader(str(pdf))
    text = _text(pdf)
    assert len(reader.pages) >= 3
    assert all(f"row{i} " in text for i in range(150))  # no row lost at a page break
    assert text.count("name order n") == len(reader.pages)  # the header repeats on every page
    assert "nli>qa & qa<nli" in text and "bold and italic nli>qa" in text


def test_short_sections_share_a_page_and_headings_stay_with_what_follows(tmp_path):
    from seqrob.report.document import PageBreak

    rows = [[str(i), "x"] for i in range(8)]
    filler = Text("words " * 800)  # most of a page
    blocks = [Heading("Title"), Text("short"), PageBreak(unless_room=3), Heading("Next"), Text("also short")]
    assert len(PdfReader(str(write_pdf(blocks, tmp_path / "a.pdf", title="t", footer="f"))).pages) == 1
    blocks = [Heading("Title"), filler, Heading("Stays with its table"), Table(["a", "b"], rows, caption="cap")]
    pages = PdfReader(str(write_pdf(blocks, tmp_path / "b.pdf", title="t", footer="f"))).pages
    assert len(pages) == 2 and "Stays with its table" in pages[1].extract_text()


def test_figures_are_vector_and_searchable(tmp_path):
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(4, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("uniquelabel")
    pdf = write_pdf([Heading("x"), Figure(fig, caption="cap")], tmp_path / "f.pdf", title="t", footer="f")
    page = PdfReader(str(pdf)).pages[0]
    assert "uniquelabel" in page.extract_text()  # the figure's text is text, not pixels
    xobjects = page["/Resources"]["/XObject"]
    assert any(xobjects[name].get_object()["/Subtype"] == "/Form" for name in xobjects)  # vector form, no image


def test_number_formatting_is_for_reading_only(planted):
    assert number(0.0123, 2) == "0.01"
    assert number(-1.26, 1, signed=True) == "\u22121.3"
    assert number(float("inf"), 1, signed=True) == "+\u221e"
    assert number(None) == "\u2013"
    assert p_text(0.0004) == "<0.001" and p_text(0.0123) == "0.012" and p_text(0.456) == "0.46" and p_text(1.0) == "1"
    # Nothing upstream of the rendering is rounded: the stored contrast is the mean per-seed
    # difference of the family means to double precision.
    with Warehouse(planted["db"], read_only=True) as wh:
        scores = wh.scores()
    means = scores.groupby(["family", "order", "seed"])["score"].mean()
    stored = planted["analysis"]["results"]
    row = stored[(stored["test"] == "contrast") & (stored["family"] == "Uralic")].iloc[0]
    first, second = row["term"].split(" vs ")
    expected = (means.loc[("Uralic", first)] - means.loc[("Uralic", second)]).mean()
    assert row["estimate"] == pytest.approx(expected, rel=1e-12, abs=1e-15)


# --- the command ---------------------------------------------------------------------------------


def test_cli_report_writes_the_pdf_and_says_how(planted, tmp_path, capsys):
    from seqrob.cli import main

    out = tmp_path / "cli" / "r.pdf"
    main(["report", "--db", str(planted["db"]), "--out", str(out), "--n-boot", str(N_BOOT), "--no-html"])
    printed = capsys.readouterr().out
    assert "reused stored analysis 1" in printed and str(out) in printed.replace("\n", "")
    assert out.exists() and not out.with_suffix(".html").exists()


def test_cli_report_without_a_warehouse_is_one_line(tmp_path, capsys):
    from seqrob.cli import main

    with pytest.raises(SystemExit) as done:
        main(["report", "--db", str(tmp_path / "absent.duckdb")])
    assert done.value.code != 0
    error = capsys.readouterr().err
    assert "no warehouse at" in error and "Traceback" not in error
    assert not (tmp_path / "absent.duckdb").exists()


def test_demo_trains_analyses_and_reports(tmp_path, monkeypatch):
    """``seqrob demo`` end to end on the embedded default, cut to a few steps per stage."""
    pytest.importorskip("torch")
    import seqrob.training

    from seqrob.report.demo import demo

    embedded = seqrob.training.load_config

    def small(*args, **kwargs):  # the embedded default with a few steps and examples: minutes become seconds
        config = seqrob.training.with_overrides(embedded(*args, **kwargs), max_steps=12, seeds=3)
        synthetic = dataclasses.replace(config.synthetic, train_examples=96, eval_examples=40, corpus_sentences=150)
        return dataclasses.replace(config, synthetic=synthetic)

    monkeypatch.setattr(seqrob.training, "load_config", small)
    result = demo(tmp_path / "demo.duckdb", out=tmp_path / "reports" / "robustness.pdf", workers=1)
    assert result.sweep.finished == 18 and result.sweep.failed == 0  # 3 orders x 2 methods x 3 seeds
    assert result.analysis.analysis_id == result.analysis_id == 1
    assert set(result.analysis.findings["factor"]) == {"order", "method", "order x method"}
    text = _text(result.pdf)
    assert "Synthetic-North" in text and "ner>qa" in text and "5. Methods" in text
    assert "topic accuracy: methods" in text and "Methods compared" in text
    again = demo(tmp_path / "demo.duckdb", out=tmp_path / "reports" / "robustness.pdf", workers=1)
    assert again.sweep.skipped == 18 and again.analysis_id == 1  # nothing redone: the stored analysis is reused
    with Warehouse(tmp_path / "demo.duckdb", read_only=True) as wh:
        assert wh.latest_analysis("significance") == 1


#: Designs ``analyze`` accepts at their edges (issue 14): simulate's keywords, and what page 1 must say cannot be told.
EDGE_DESIGNS = {
    "one-language": (dict(languages=["de"]), "Cannot tell whether order acts differently in other languages: one language only (de)"),
    "one-family": (dict(languages=["de", "fr", "en"]),
                   "Cannot tell whether order acts differently in different families: all 3 languages are in one family"),
    "one-order": (dict(orders=("none",)), "Cannot tell whether order matters: one order only"),
    "one-seed": (dict(seeds=1), "Cannot tell whether order matters: 1 seed(s) for some order"),
    "two-orders-no-baseline": (dict(orders=("nli>qa", "qa>nli")),
                               "No 'none' baseline was run: orders are compared with each other (nli>qa stands in"),
}  # fmt: skip


@pytest.mark.parametrize("design", list(EDGE_DESIGNS))
def test_every_design_analyze_accepts_renders_and_says_what_cannot_be_told(design, tmp_path):
    options, cannot = EDGE_DESIGNS[design]
    settings = {"seeds": 3, "languages": ["de", "fi"], "n_examples": 30, "seed": 5, **options}
    settings["families"] = {code: DEFAULT_FAMILIES[code] for code in settings["languages"]}
    sim = simulate(**settings)
    with Warehouse(tmp_path / "edge.duckdb") as wh:
        wh.ingest_frames(scores=sim.scores, predictions=sim.predictions)
        pdf = render_report(wh, tmp_path / "edge.pdf", n_boot=200, html=False)
    assert pdf.exists() and pdf.stat().st_size > 0
    assert cannot in _first_page(pdf)
