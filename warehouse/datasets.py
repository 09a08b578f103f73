"""Real per-seed results shipped with seqrob, in its long scores format.

Each set holds many seeds of ONE training configuration (per variant), so they are
"real nulls": relabel the runs into pseudo-orders within seeds and order cannot
matter, and every claim a test makes about order is false. Two sets are published
results (copied unchanged, sources and licences in ``data/real/README.md``); one is
real training noise from seqrob's own trainer on its synthetic default.

The evaluation units of the published sets are data sets, not languages: the
evaluation set (``instability_nli``) or GLUE task (``revisit_glue``) goes in the
``language`` column, and :data:`INSTABILITY_FAMILIES` / :data:`REVISIT_FAMILIES`
group them into families, so the frames ingest without a language lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from seqrob.warehouse.errors import InputError

__all__ = [
    "REAL_SETS",
    "REVISIT_VARIANTS",
    "INSTABILITY_FAMILIES",
    "REVISIT_FAMILIES",
    "load_real",
]

REAL_SETS: tuple[str, ...] = ("instability_nli", "revisit_glue", "seqrob_one_order")

#: The three optimiser variants of ``revisit_glue`` (equal hyperparameters otherwise).
REVISIT_VARIANTS: tuple[str, ...] = ("not_debiased", "standard_debiased", "reinit_debiased")

#: Families of the twelve NLI evaluation sets of ``instability_nli``: the in-domain
#: MNLI pair, the SNLI pair, two challenge sets, and six stress tests.
INSTABILITY_FAMILIES: Mapping[str, str] = {
    "mnli": "MNLI", "mnli-mm": "MNLI",
    "snli": "SNLI", "snli-hard": "SNLI",
    "hans": "challenge", "break": "challenge",
    "stress-antonymy": "stress", "stress-length": "stress", "stress-negation": "stress",
    "stress-numerical": "stress", "stress-overlap": "stress", "stress-spell": "stress",
}  # fmt: skip

#: Families of the four GLUE tasks of ``revisit_glue`` (GLUE's own grouping).
REVISIT_FAMILIES: Mapping[str, str] = {
    "CoLA": "single-sentence",
    "MRPC": "similarity",
    "STS-B": "similarity",
    "RTE": "inference",
}

_DATA = Path(__file__).resolve().parent / "data" / "real"
_FILES = {
    "instability_nli": "instability_nli_bert_base_10_seeds.csv",
    "revisit_glue": "revisit_bert_finetuning_50_seeds.csv",
    "seqrob_one_order": "seqrob_synthetic_one_order_24_seeds.csv",
}
_COLUMNS = ["run_id", "order", "seed", "task", "language", "family", "metric", "score"]


def load_real(name: str, *, variant: str | None = None) -> pd.DataFrame:
    """One shipped set of real per-seed results, as seqrob long scores.

    Parameters
    ----------
    name
        One of :data:`REAL_SETS`:

        ``"instability_nli"``
            BERT-base fine-tuned on MNLI, seeds 1-10, accuracy on 12 NLI evaluation
            sets (Zhou et al., EMNLP 2020). ``task="nli"``, ``order="bert-base"``,
            ``metric="accuracy"`` (every value in [0, 1]). 120 rows.
        ``"revisit_glue"``
            bert-large-uncased, seeds 0-49, on GLUE CoLA, MRPC, RTE and STS-B, in
            three variants (a replication of Zhang et al., ICLR 2021). Only the
            score after the last step (``which == "test_last_log"``) is kept.
            ``task="glue"``, ``metric="score"``: the values mix units (CoLA is
            Matthews correlation, MRPC and RTE accuracy, STS-B Pearson-Spearman
            correlation), so compare within a GLUE task. The six failed STS-B
            evaluations of ``not_debiased`` (NaN in the source) are dropped; its
            failed CoLA runs (MCC 0.0) are real scores and kept.
        ``"seqrob_one_order"``
            ``seqrob train``'s embedded synthetic default, the one order
            ``qa>ner``, init seeds 1-24: zero-shot ``topic`` accuracy (4 classes,
            chance 0.25) on 12 synthetic languages. Returned as exported, with
            ``data_seed``, ``method`` and ``n_examples`` as well.
    variant
        ``revisit_glue`` only: one of :data:`REVISIT_VARIANTS`. ``None`` (default)
        returns all three; the variant is both ``method`` and ``order``, so a caller
        can compare the variants as "orders" paired by seed.

    Returns
    -------
    pandas.DataFrame
        One row per run x task x language x metric:

        - ``run_id``: unique per run, ``f"{name}-{variant}-s{seed}"`` for the
          published sets (variant ``bert-base`` for ``instability_nli``); the
          warehouse's run id for ``seqrob_one_order``.
        - ``order``: the configuration (variant name, ``bert-base``, or ``qa>ner``).
        - ``seed``: the source's seed (int).
        - ``task``, ``language``, ``family``, ``metric``, ``score``: as above;
          ``family`` from :data:`INSTABILITY_FAMILIES`, :data:`REVISIT_FAMILIES`, or
          the synthetic families.
        - ``method`` (``revisit_glue``; also ``seqrob_one_order``, with
          ``data_seed`` and ``n_examples``).

    Raises
    ------
    InputError
        ``name`` is not a shipped set, or ``variant`` is not one of its variants.

    Examples
    --------
    >>> from seqrob.warehouse.datasets import load_real
    >>> scores = load_real("instability_nli")
    >>> scores.shape, scores["seed"].nunique()
    ((120, 8), 10)
    >>> scores.groupby("family")["language"].nunique()
    family
    MNLI         2
    SNLI         2
    challenge    2
    stress       6
    Name: language, dtype: int64
    >>> glue = load_real("revisit_glue", variant="not_debiased")
    >>> glue.groupby("language")["score"].count()   # STS-B: 6 failed evaluations dropped
    language
    CoLA     50
    MRPC     50
    RTE      50
    STS-B    44
    Name: score, dtype: int64
    >>> load_real("revisit_glue")["order"].unique().tolist()
    ['not_debiased', 'reinit_debiased', 'standard_debiased']
    """
    if name not in REAL_SETS:
        raise InputError(f"no shipped real set '{name}'", fix=f"use one of {', '.join(REAL_SETS)}")
    if name != "revisit_glue" and variant is not None:
        raise InputError(f"'{name}' has one configuration, no variant '{variant}'", fix="leave variant out")
    if name == "revisit_glue" and variant is not None and variant not in REVISIT_VARIANTS:
        raise InputError(
            f"'revisit_glue' has no variant '{variant}'", fix=f"use one of {', '.join(REVISIT_VARIANTS)}, or none for all"
        )
    path = _DATA / _FILES[name]
    if name == "instability_nli":
        return _instability(pd.read_csv(path))
    if name == "revisit_glue":
        return _revisit(pd.read_csv(path), variant)
    return pd.read_csv(path)


def _instability(raw: pd.DataFrame) -> pd.DataFrame:
    order = "bert-base"
    out = pd.DataFrame(
        {
            "run_id": [f"instability_nli-{order}-s{seed}" for seed in raw["seed"]],
            "order": order,
            "seed": raw["seed"].astype("int64"),
            "task": "nli",
            "language": raw["evalset"],
            "family": raw["evalset"].map(INSTABILITY_FAMILIES),
            "metric": "accuracy",
            "score": raw["value"].astype(float),
        }
    )
    return out.sort_values(["seed", "language"], ignore_index=True)[_COLUMNS]


def _revisit(raw: pd.DataFrame, variant: str | None) -> pd.DataFrame:
    keep = (raw["which"] == "test_last_log") & raw["value"].notna()
    if variant is not None:
        keep &= raw["method"] == variant
    raw = raw[keep]
    out = pd.DataFrame(
        {
            "run_id": [f"revisit_glue-{m}-s{s}" for m, s in zip(raw["method"], raw["seed"])],
            "order": raw["method"],
            "seed": raw["seed"].astype("int64"),
            "task": "glue",
            "language": raw["task"],
            "family": raw["task"].map(REVISIT_FAMILIES),
            "metric": "score",
            "score": raw["value"].astype(float),
            "method": raw["method"],
        }
    )
    return out.sort_values(["order", "seed", "language"], ignore_index=True)[[*_COLUMNS, "method"]]
