"""The Examples sections of the analysis and warehouse docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import warnings

import pytest

MODULES = [
    "seqrob.analysis.aso",
    "seqrob.analysis.bootstrap",
    "seqrob.analysis.calibrate",
    "seqrob.analysis.mixed",
    "seqrob.analysis.mixed_fit",
    "seqrob.analysis.mixed_tests",
    "seqrob.analysis.permutation",
    "seqrob.analysis.power",
    "seqrob.analysis.results",
    "seqrob.analysis.significance",
    "seqrob.analysis.variance",
    "seqrob.warehouse.datasets",
    "seqrob.warehouse.simulate",
    "seqrob.warehouse.store",
    "seqrob",
    "seqrob.api",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-seed examples warn, as they should
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
