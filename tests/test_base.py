import numpy as np
import pytest
import torch

from course_lib._base import as_tensor, make_generator, to_output


def test_numpy_becomes_cpu_float64():
    t, was_numpy = as_tensor(np.arange(6, dtype=np.int32).reshape(3, 2))
    assert was_numpy and t.dtype == torch.float64 and t.device.type == "cpu"


def test_tensor_keeps_dtype():
    t, was_numpy = as_tensor(torch.ones(3, 2, dtype=torch.float32))
    assert not was_numpy and t.dtype == torch.float32


@pytest.mark.parametrize("bad, match", [
    (np.array([1.0, 2.0]), "2-D"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.array([[1.0, np.inf]]), "infinite"),
    (np.array([["a", "b"]]), "non-numeric"),
])
def test_bad_input_is_one_clear_line(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        as_tensor(bad)
    assert "\n" not in str(info.value)


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
