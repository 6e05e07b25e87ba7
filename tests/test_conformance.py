"""scikit-learn conformance: the shared check suite on every estimator, fitted state only after a successful
fit, the right mixins and tags, and the docstring examples run as doctests."""
from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, DensityMixin, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

import course_lib
from course_lib import (VAE, FactorAnalysis, GaussianDiscriminantAnalysis, GaussianMixture, GaussianNaiveBayes,
                        MissingDataGaussian, PCA)

ESTIMATORS = [
    GaussianMixture(),
    GaussianMixture(n_components=2, covariance_type="diag", random_state=0),
    GaussianMixture(n_components=2, covariance_type="spherical", random_state=0),
    PCA(),
    PCA(n_components=1, solver="iterative", random_state=0),
    FactorAnalysis(max_iter=200),
    MissingDataGaussian(),
    GaussianDiscriminantAnalysis(),
    GaussianDiscriminantAnalysis(shared_covariance=True),
    GaussianNaiveBayes(),
]

# Every check expected to fail, and why; none of these is a defect.
_OBJECT_ARRAYS = ("an object array holding a non-number (a dict) gets this package's one-line ValueError, where "
                  "the check wants NumPy's TypeError; object arrays of numbers are accepted (the first half of "
                  "the check, which passes)")


def expected_failed_checks(estimator) -> dict[str, str]:
    failures = {"check_dtype_object": _OBJECT_ARRAYS}
    if isinstance(estimator, PCA) and estimator.solver == "eigh":
        failures["check_transformer_n_iter"] = ("the closed-form solver='eigh' runs no iteration, so n_iter_ is 0; "
                                                "max_iter belongs to solver='iterative', which passes the check")
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_scikit_learn_check_suite(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # convergence warnings on the checks' tiny random data sets
        check(estimator)


def test_every_estimator_is_checked():
    """Each estimator class of the package (except the VAE, see below) is in the list the check suite runs on."""
    classes = {getattr(course_lib, name) for name in course_lib._LAZY} - {VAE}
    assert classes == {type(e) for e in ESTIMATORS}


def test_vae_is_a_torch_module_outside_the_check_suite():
    """The VAE is a ``torch.nn.Module`` whose networks are built in ``__init__`` from ``input_dim`` (the design's
    contract), so scikit-learn's checks, which fit one instance on data of several widths and rebuild it
    through ``set_params``, do not apply to it. Its own tests cover it, and the fuzz and thread tests include it."""
    vae = VAE(3, 2, (4,))
    assert isinstance(vae, torch.nn.Module) and not isinstance(vae, BaseEstimator)
    with pytest.raises(ValueError, match="input_dim=3"):
        vae.fit(np.zeros((5, 4)), epochs=1, progress=False)


@pytest.mark.parametrize("estimator, mixin, estimator_type", [
    (GaussianMixture(), DensityMixin, "density_estimator"),
    (MissingDataGaussian(), DensityMixin, "density_estimator"),
    (PCA(), TransformerMixin, None),
    (FactorAnalysis(), TransformerMixin, None),
    (GaussianDiscriminantAnalysis(), ClassifierMixin, "classifier"),
    (GaussianNaiveBayes(), ClassifierMixin, "classifier"),
])
def test_mixins_and_tags(estimator, mixin, estimator_type):
    assert isinstance(estimator, mixin)
    tags = get_tags(estimator)
    assert tags.estimator_type == estimator_type
    assert (tags.transformer_tags is not None) == (mixin is TransformerMixin)
    assert tags.input_tags.allow_nan == isinstance(estimator, MissingDataGaussian)
    # the mixin comes before the base class, as scikit-learn requires for its tags to win
    mro = type(estimator).__mro__
    assert mro.index(mixin) < mro.index(BaseEstimator)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(30, 3)), np.arange(30) % 2


# one bad hyper-parameter per estimator: the fit must fail before it records anything
BAD = [
    (GaussianMixture(covariance_type="tied"), "predict"),
    (GaussianMixture(n_components=40), "predict"),          # only found once the data are seen
    (PCA(solver="svd"), "transform"),
    (PCA(n_components=5), "transform"),                     # more components than features
    (FactorAnalysis(completion="guess"), "transform"),
    (FactorAnalysis(n_components=2, components_init=np.ones((3, 3))), "transform"),   # a wrong shape
    (MissingDataGaussian(max_iter=0), "impute"),
    (GaussianDiscriminantAnalysis(reg_covar=-1.0), "predict"),
    (GaussianNaiveBayes(var_smoothing=float("nan")), "predict"),
]


def _fit(est, X, y):
    if isinstance(est, ClassifierMixin):
        return est.fit(X, y)
    return est.fit(X)


@pytest.mark.parametrize("estimator, method", BAD, ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_a_failed_fit_leaves_the_estimator_unfitted(estimator, method):
    X, y = _data()
    est = clone(estimator)
    with pytest.raises(ValueError):
        _fit(est, X, y)
    with pytest.raises(NotFittedError):
        getattr(est, method)(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    # Nothing fitted was recorded. A check that needs the data (n_components against the data's shape) runs
    # once they are read, which records n_features_in_ and their kind; everything else fails before that.
    recorded = {k for k in vars(est) if k.endswith("_") and not k.endswith("__")}
    needs_data = getattr(est, "n_components", None) in (40, 5) or getattr(est, "components_init", None) is not None
    assert recorded <= ({"n_features_in_"} if needs_data else set())
    if not needs_data:
        assert "_device" not in vars(est)


@pytest.mark.parametrize("estimator, method", BAD, ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_a_failed_refit_forgets_the_earlier_fit(estimator, method):
    """A fitted estimator whose next fit fails is not left holding the old fit mixed with the new settings."""
    X, y = _data()
    good = clone(estimator).set_params(**type(estimator)().get_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fit(good, X, y)
    getattr(good, method)(X)                                # fitted: works
    good.set_params(**estimator.get_params())
    with pytest.raises(ValueError):
        _fit(good, X, y)
    with pytest.raises(NotFittedError):
        getattr(good, method)(X)


def test_hyper_parameters_are_checked_before_the_data():
    """A bad hyper-parameter is reported even when the data are bad too: it is checked first."""
    for est in (GaussianMixture(covariance_type="tied"), PCA(solver="svd"), FactorAnalysis(completion="x"),
                MissingDataGaussian(completion="x"), GaussianNaiveBayes(var_smoothing=-1)):
        with pytest.raises(ValueError, match="covariance_type|solver|completion|var_smoothing"):
            _fit(est, np.array([[np.inf]]), np.array([0]))


def test_empty_feature_dimension_is_refused_everywhere():
    """A (3, 0) array used to fit a one-component mixture silently."""
    X = np.empty((3, 0))
    for est in (GaussianMixture(), PCA(), FactorAnalysis(), MissingDataGaussian(), GaussianDiscriminantAnalysis(),
                GaussianNaiveBayes()):
        with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(3, 0\)\) while a minimum of 1"):
            _fit(est, X, np.array([0, 1, 0]))


# ---------------------------------------------------------------------------------------------- doctests
def _modules():
    names = ["course_lib"] + [f"course_lib.{m.name}" for m in pkgutil.iter_modules(course_lib.__path__)]
    return sorted(names)


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    before = torch.get_num_threads()
    for test in finder.find(module, module_name):
        runner.run(test)
    assert torch.get_num_threads() == before
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) of {module_name} failed (see the output above)"


def test_the_reference_api_has_examples():
    """Every public function of the reference API and every ``from_params`` shows how it is called."""
    from course_lib import factor_analysis, missing_data, mixture
    documented = [mixture.log_joint, mixture.e_step, mixture.m_step, mixture.em_step, missing_data.complete,
                  missing_data.m_step, factor_analysis.em_step]
    documented += [cls.from_params for cls in (GaussianMixture, MissingDataGaussian, FactorAnalysis, PCA,
                                               GaussianDiscriminantAnalysis, GaussianNaiveBayes)]
    for fn in documented:
        assert ">>>" in (fn.__doc__ or ""), f"{fn.__qualname__} has no example"
