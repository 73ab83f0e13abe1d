import numpy as np
import pytest

from scaling import law
from scaling.coefficients import NAMED_SETS, LawCoefficients, load_coefficients
from scaling.errors import InputError

C = NAMED_SETS["chinchilla"]


def test_loss_formula():
    assert law.loss(C, 1e9, 2e10) == pytest.approx(1.69 + 406.4 / 1e9**0.336 + 410.7 / 2e10**0.283, rel=1e-15)


@pytest.mark.parametrize("n", [1e8, 7e9, 7e10])
def test_chinchilla_for_params_satisfies_lagrange_condition(n):
    d = law.chinchilla_for_params(C, n)
    # compute-optimal at fixed FLOPs: alpha A N^-alpha = beta B D^-beta
    assert C.alpha * C.A * n**-C.alpha == pytest.approx(C.beta * C.B * d**-C.beta, rel=1e-12)
    assert law.chinchilla_for_tokens(C, d) == pytest.approx(n, rel=1e-12)
    n2, d2 = law.chinchilla_for_compute(C, law.training_flops(n, d))
    assert (n2, d2) == (pytest.approx(n, rel=1e-10), pytest.approx(d, rel=1e-10))
    n3, d3 = law.chinchilla_for_loss(C, law.loss(C, n, d))
    assert (n3, d3) == (pytest.approx(n, rel=1e-9), pytest.approx(d, rel=1e-9))


def test_chinchilla_for_loss_is_the_cheapest_model_on_the_isoloss_curve():
    target = 2.1
    n0, d0 = law.chinchilla_for_loss(C, target)
    for n in n0 * np.array([0.5, 0.9, 1.1, 2.0]):
        d = law.tokens_for_loss(C, n, target)
        assert law.training_flops(n, d) > law.training_flops(n0, d0)


def test_inverse_functions_round_trip():
    n, d = 3e9, 1e11
    target = law.loss(C, n, d)
    assert law.tokens_for_loss(C, n, target) == pytest.approx(d, rel=1e-10)
    assert law.params_for_loss(C, d, target) == pytest.approx(n, rel=1e-10)
    assert np.isinf(law.tokens_for_loss(C, 1e3, target))  # too small to ever get there


def test_loss_at_or_below_floor_is_rejected():
    with pytest.raises(InputError, match="floor"):
        law.chinchilla_for_loss(C, 1.69)
    with pytest.raises(InputError, match="finite"):
        law.chinchilla_for_loss(C, float("nan"))


def test_coefficients_validate_and_load(tmp_path):
    with pytest.raises(InputError):
        LawCoefficients(A=-1, B=1, E=1, alpha=0.3, beta=0.3)
    f = tmp_path / "fit.json"
    f.write_text('{"A": 1.5, "B": 2, "E": 1.1, "alpha": 0.2, "beta": 0.3, "objective": 1}')
    assert load_coefficients(str(f)).B == 2.0
    assert load_coefficients("sardana-all").alpha == 0.18
    with pytest.raises(InputError, match="no such file"):
        load_coefficients(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="JSON"):
        load_coefficients(str(tmp_path / "bad.json"))
