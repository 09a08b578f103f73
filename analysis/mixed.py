"""Linear mixed models for order effects: crossed seed, run and language random effects.

One model per task and metric::

    score ~ order * family + (1|seed) + (1|seed:order) + (1|language)

The unit of replication is the *run* (one order trained with one seed): every language
of a run shares the run's deviation, so the run term ``(1|seed:order)`` is what keeps
30 languages of one run from counting as 30 independent pieces of evidence about the
order. Leave it out (``random=("seed", "language")``) and pure seed noise reads as an
order effect; the option exists to show that trap, not to be used.

:func:`fit_mixed` fits one model (:mod:`~seqrob.analysis.mixed_fit`); :func:`order_tests`
tests what a task x metric needs and returns seqrob's result rows (F tests of order and
order x family -- rows named ``lrt_order`` and ``lrt_order_family`` -- pairwise order
contrasts per family, and the likelihood-ratio test of order-specific run variance;
:mod:`~seqrob.analysis.mixed_tests`). Given a fit, ``order_tests(data, fit=fit)`` tests
it without fitting it again.

The fitter is lme4's profiled-deviance formulation (Bates et al. 2015) with dense
``q x q`` algebra (:mod:`~seqrob.analysis.mixed_deviance`): there are few random effects
(seeds + runs + languages), so after one pass over the data every deviance evaluation
costs at most ``O(q^3)``, independent of the number of scores. Results match lme4 and
lmerTest (see ``tests/reference``).

Examples
--------
>>> from seqrob.warehouse.simulate import DEFAULT_FAMILIES, simulate
>>> sim = simulate(seeds=5, families=DEFAULT_FAMILIES, outcomes=False)
>>> fit = fit_mixed(sim.scores)
>>> table = order_tests(sim.scores, fit=fit)
>>> list(table["test"].unique())
['lrt_order', 'lrt_order_family', 'contrast', 'run_variance_lrt']
"""

from __future__ import annotations

from seqrob.analysis.mixed_fit import RANDOM_TERMS, MixedFit, fit_mixed
from seqrob.analysis.mixed_fit import _one_blas_thread as _one_blas_thread  # calibrate.py runs its fits under it
from seqrob.analysis.mixed_tests import order_tests

__all__ = ["RANDOM_TERMS", "MixedFit", "fit_mixed", "order_tests"]
