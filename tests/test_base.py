import warnings

import numpy as np
import pytest
import torch

from course_lib._base import as_tensor, check_scale, make_generator, to_output


def test_numpy_becomes_cpu_float64():
    t, was_numpy = as_tensor(np.arange(6, dtype=np.int32).reshape(3, 2))
    assert was_numpy and t.dtype == torch.float64 and t.device.type == "cpu"


def test_tensor_keeps_dtype():
    t, was_numpy = as_tensor(torch.ones(3, 2, dtype=torch.float32))
    assert not was_numpy and t.dtype == torch.float32


@pytest.mark.parametrize("bad, match, kwargs", [
    (np.array([1.0, 2.0]), "2-D, got shape \\(2,\\). Reshape your data", {}),
    (np.array([[1.0, np.nan]]), "NaN", {}),
    (np.array([[1.0, np.inf]]), "infinite", {}),
    (np.array([["a", "b"]]), "non-numeric", {}),
    (np.array([[1.0, {"a": 1}]], dtype=object), "object array with entries that are not numbers", {}),
    (np.array([[1.0 + 1j]]), "Complex data not supported", {}),
    (torch.ones(2, 2, dtype=torch.complex64), "Complex data not supported", {}),
    (np.empty((4, 0)), "0 feature\\(s\\) \\(shape=\\(4, 0\\)\\) while a minimum of 1 is required", {"min_features": 1}),
    (np.empty((0, 3)), "0 sample\\(s\\)", {}),
    (torch.eye(3).to_sparse(), "sparse input is not supported", {}),
])
def test_bad_input_is_one_clear_line(bad, match, kwargs):
    with pytest.raises(ValueError, match=match) as info:
        as_tensor(bad, **kwargs)
    assert "\n" not in str(info.value)


def test_sparse_matrices_are_refused_with_their_fix():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match=r"sparse input is not supported; pass a dense array \(X.toarray\(\)"):
        as_tensor(scipy_sparse.csr_matrix(np.eye(3)))


def test_object_arrays_of_numbers_and_read_only_arrays_are_read():
    X = np.arange(6.0).reshape(3, 2)
    t, _ = as_tensor(X.astype(object))
    assert t.dtype == torch.float64 and torch.equal(t, torch.as_tensor(X))
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # torch warns when it would share a read-only array
        t, _ = as_tensor(X)
    assert torch.equal(t, torch.as_tensor(X.copy()))


@pytest.mark.parametrize("scale, ok", [(1.0, True), (1e100, True), (1e-100, True), (1e200, False), (1e-200, False)])
def test_check_scale_refuses_what_second_moments_cannot_hold(scale, ok):
    X = torch.as_tensor(np.random.default_rng(0).normal(size=(50, 3)) * scale)
    X[:, 2] = 0.0                               # an all-zero column is left to the estimators
    if ok:
        check_scale(X)
        return
    with pytest.raises(ValueError, match="rescale|divide X|multiply X") as info:
        check_scale(X)
    assert "column 0" in str(info.value) and "\n" not in str(info.value)


def test_check_scale_in_float32_and_with_missing_entries():
    X = torch.full((10, 2), 1e20, dtype=torch.float64)
    check_scale(X)                                              # float64 holds 1e40
    with pytest.raises(ValueError, match="overflow float32"):
        check_scale(X, dtype=torch.float32)                     # float32 does not
    X[0, 0] = float("nan")
    with pytest.raises(ValueError, match="column 0"):
        check_scale(X, dtype=torch.float32)


def test_nan_allowed_when_asked():
    t, _ = as_tensor(np.array([[1.0, np.nan]]), allow_nan=True)
    assert torch.isnan(t).sum() == 1


def test_to_output_round_trip():
    t = torch.ones(2, requires_grad=True) * 2
    assert isinstance(to_output(t, True), np.ndarray)
    assert to_output(t, False) is t


def test_generator_is_seeded():
    a = torch.rand(3, generator=make_generator(7))
    b = torch.rand(3, generator=make_generator(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="random_state"):
        make_generator("seven")


def test_shared_parameter_checks():
    from course_lib._base import check_choice, check_int, check_n_components, check_nonneg
    assert check_int(3, "max_iter") == 3 and check_int(0, "max_iter", minimum=0) == 0
    assert check_nonneg(0.5, "tol") == 0.5 and check_choice("full", "kind", ("full", "diag")) == "full"
    assert check_n_components(None, 4) == 4 and check_n_components(2, 4) == 2
    for call, match in [(lambda: check_int(True, "max_iter"), "max_iter=True must be a positive integer"),
                        (lambda: check_int(-1, "max_iter", minimum=0), "non-negative integer"),
                        (lambda: check_nonneg(float("inf"), "tol"), "non-negative finite number"),
                        (lambda: check_choice("svd", "solver", ("eigh",)), "use one of 'eigh'"),
                        (lambda: check_n_components(5, 4), "n_components=5 is larger than n_features=4")]:
        with pytest.raises(ValueError, match=match):
            call()
