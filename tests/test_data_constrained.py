"""The data-constrained law (Muennighoff et al. 2023) and the optimizer under a unique-data budget.

Golden numbers are the authors' own: the README of their repository (huggingface/datablations,
section "Parametric Fit") and their paper (arXiv:2305.16264, App. A "Derivation of Data-Constrained
Scaling Laws" and the appendix "C4 Scaling Coefficients"); docs/data-constrained.md lists them.
"""

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from scaling import data_constrained as dc
from scaling import law
from scaling.coefficients import NAMED_SETS, load_coefficients
from scaling.errors import InputError
from scaling.optimal import CostSettings, InferenceDemand, compute_optimal, cost_optimal, total_flops

M = NAMED_SETS["muennighoff2023"]
PAPER_SETS = ["chinchilla", "sardana-le100", "sardana-le250", "sardana-le500", "sardana-all"]


# --- the authors' numbers ---------------------------------------------------------------------

def test_named_set_is_the_c4_fit_of_the_appendix():
    # App. "C4 Scaling Coefficients": "a=6.255414, b=7.3049974, e=0.6254804, alpha=beta=0.3526596"
    assert load_coefficients("muennighoff2023") is M
    assert (math.log(M.A), math.log(M.B), math.log(M.E)) == pytest.approx((6.255414, 7.3049974, 0.6254804), abs=1e-15)
    assert M.alpha == M.beta == 0.3526596
    # ... printed as "L(N, D) = 1.87 + 521 / N^0.353 + 1488 / D^0.353"
    assert (round(M.E, 2), round(M.A), round(M.B), round(M.alpha, 3)) == (1.87, 521, 1488, 0.353)
    # "Given the Gopher compute budget of C = 5.76e23 our fitted parameters predict an optimal
    # allocation of N_opt = 70.0 billion parameters and D_opt = 1.37 trillion tokens"
    n, d = law.chinchilla_for_compute(M, 5.76e23)
    assert (round(float(n) / 1e9, 1), round(float(d) / 1e12, 2)) == (70.0, 1.37)
    # App. A's final law: "where U_N = U_D * 0.051"
    assert round(float(dc.unique_params(M, 1e9)) / 1e9, 3) == 0.051
    assert float(dc.unique_params(M, 7e10)) == pytest.approx(0.0509865 * 7e10, rel=1e-6)


def test_repetition_constants_are_appendix_a():
    # App. A: "a fairly stable fit resulting in R_N* = 5.309743 and R_D* = 15.387756"
    assert (dc.MUENNIGHOFF2023.r_d_star, dc.MUENNIGHOFF2023.r_n_star) == (15.387756, 5.309743)
    assert dc.REPETITION_SETS["muennighoff2023"] is dc.MUENNIGHOFF2023


def test_readme_losses_of_the_figure1_models():
    # README "Parametric Fit": print(scaling_law(6.34e9, 242e9, 25e9)) # 2.2256440889984477
    #                          print(scaling_law(8.67e9, 178e9, 25e9)) # 2.2269634075087867
    # printed to full double precision: our law reproduces them to rounding (asked: 1e-9)
    got = dc.loss(M, [6.34e9, 8.67e9], [242e9, 178e9], 25e9)
    np.testing.assert_allclose(got, [2.2256440889984477, 2.2269634075087867], rtol=1e-14, atol=0)
    assert got[0] < got[1]  # "# <- This one is better"


def test_appendix_a_worked_example_of_effective_data():
    # App. A: R_D* = 3, U = 1, five epochs (R_D = 4): "D' = 1 + 3 * (1 - e^{-4/3}) = 3.21";
    # "Consider R_D = 100 then D' = 1 + 3 * (1 - e^{-100/3}) = 3.99" (4 - 1e-14, printed truncated)
    r3 = dc.RepetitionConstants(r_d_star=3.0, r_n_star=3.0)
    d5, d101 = dc.effective_tokens([5.0, 101.0], 1.0, r3)
    assert round(float(d5), 2) == 3.21 and math.floor(float(d101) * 100) / 100 == 3.99
    assert float(d5) == pytest.approx(1 + 3 * (1 - math.exp(-4 / 3)), rel=1e-15)
    # "it plateaus at U + R_D* U as R_D tends to infinity"
    assert float(dc.effective_tokens(1e30, 1.0, r3)) == 4.0


def _min_loss_at_compute(c, n_times_d, u):
    """Independent of the optimizer: the lowest law value along N D = const (scipy, bounded)."""
    res = minimize_scalar(lambda x: float(dc.loss(c, math.exp(x), n_times_d / math.exp(x), u)),
                          bounds=(math.log(1e9), math.log(5e10)), method="bounded", options={"xatol": 1e-12})
    return math.exp(res.x), float(res.fun)


def test_readme_optimal_allocation():
    # README: optimal_allocation(8.67e9, 178e9, 25e9) (a grid over N D = const) prints
    # "-> 227B tokens, 9.1 epochs, 6.8B parameters". Least compute at a loss is least loss at that
    # compute, so the optimizer at that compute's best loss (zero demand) returns the same model.
    u, n_times_d = 25e9, 8.67e9 * 178e9
    n_best, best_loss = _min_loss_at_compute(M, n_times_d, u)
    opt = dc.compute_optimal_constrained(M, best_loss, 0.0, u)
    assert bool(opt.binds)
    assert float(opt.params * opt.tokens) == pytest.approx(n_times_d, rel=1e-9)
    assert float(opt.params) == pytest.approx(n_best, rel=1e-5)  # scipy's xatol, the loss being flat
    assert (round(float(opt.tokens) / 1e9), round(float(opt.epochs), 1), round(float(opt.params) / 1e9, 1)) == (
        227, 9.1, 6.8)
    # the README's Figure 1 models reach their losses on at least the optimum's compute
    for n, d, loss_value in ((6.34e9, 242e9, 2.2256440889984477), (8.67e9, 178e9, 2.2269634075087867)):
        o = dc.compute_optimal_constrained(M, loss_value, 0.0, u)
        assert float(o.params * o.tokens) < n * d


# --- the law ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAPER_SETS + ["muennighoff2023"])
def test_one_pass_at_most_compute_optimal_params_is_eq4(name):
    c = NAMED_SETS[name]
    d = np.logspace(8, 13, 11)
    n = dc.unique_params(c, d) * np.linspace(0.01, 1.0, 11)  # at most compute-optimal for D
    np.testing.assert_array_equal(dc.loss(c, n, d, d), law.loss(c, n, d))  # U = D: no repeat
    np.testing.assert_array_equal(dc.loss(c, n, d, math.inf), law.loss(c, n, d))
    # R_D* = R_N* = inf: Eq. 4 everywhere, repeats and excess params included
    n2, d2 = np.meshgrid(np.logspace(6, 12, 7), np.logspace(7, 14, 8))
    np.testing.assert_allclose(dc.loss(c, n2, d2, 1e9, dc.NO_DECAY), law.loss(c, n2, d2), rtol=1e-14)


def test_repetition_and_excess_params_only_ever_cost_loss():
    n, d = np.meshgrid(np.logspace(6, 12, 13), np.logspace(7, 14, 15))
    for u in (1e7, 1e9, 1e11):
        assert np.all(dc.loss(M, n, d, u) >= law.loss(M, n, d) * (1 - 1e-15))
        assert np.all(dc.effective_tokens(d, u) <= d) and np.all(dc.effective_params(M, n, d, u) <= n)
    # more epochs of the same data never hurt, and saturate at U (1 + R_D*)
    worth = dc.effective_tokens(1e9 * np.logspace(0, 2, 50), 1e9)
    assert np.all(np.diff(worth) > 0) and worth[-1] < 1e9 * (1 + 15.387756)
    assert float(dc.effective_tokens(1e9 * 1e4, 1e9)) == pytest.approx(1e9 * (1 + 15.387756), rel=1e-15)


def test_loss_floor_is_the_limit_of_the_law():
    u = 1e10
    floor = float(dc.loss_floor(M, u))
    far = float(dc.loss(M, 1e30, 1e30, u))
    assert far == pytest.approx(floor, rel=1e-14) and far > floor - 1e-15
    assert float(dc.loss_floor(M, math.inf)) == M.E


@pytest.mark.parametrize("name", ["chinchilla", "sardana-all", "muennighoff2023"])
def test_tokens_for_loss_inverts_the_law_in_every_regime(name):
    c = NAMED_SETS[name]
    rng = np.random.default_rng(3)
    n, d, u = 10 ** rng.uniform(6, 12, 3000), 10 ** rng.uniform(7, 14, 3000), 10 ** rng.uniform(6, 14, 3000)
    keep = d / u < 60  # beyond ~500 epochs the law is flat to rounding and D is not determined
    n, d, u = n[keep], d[keep], u[keep]
    back = dc.tokens_for_loss(c, n, dc.loss(c, n, d, u), u)
    repeats, excess = d > u, (d <= u) & (n > dc.unique_params(c, np.minimum(d, u)))
    assert repeats.sum() > 100 and excess.sum() > 100 and (~repeats & ~excess).sum() > 100
    np.testing.assert_allclose(back, d, rtol=1e-11)


def test_tokens_for_loss_names_the_cap_when_out_of_reach():
    n, u = 1e9, 1e9
    best = float(dc.loss(M, n, 1e40, u))  # this model's limit: D' = U (1 + R_D*)
    with pytest.raises(InputError, match=r"out of reach .*U \(1 \+ R_D\*\) = 1\.639e\+10 tokens") as info:
        dc.tokens_for_loss(M, n, best - 1e-3, u)
    assert "\n" not in str(info.value)
    assert np.isinf(dc.tokens_for_loss(M, n, best - 1e-3, u, unreachable="inf"))
    assert np.isfinite(dc.tokens_for_loss(M, n, best + 1e-3, u))
    with pytest.raises(InputError, match="unlimited data"):
        dc.tokens_for_loss(M, 1e6, 2.0, math.inf)


def test_epochs():
    assert float(dc.epochs(2.5e11, 2.5e10)) == 10.0
    assert float(dc.epochs(1e9, math.inf)) == 0.0


# --- the optimizer ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAPER_SETS + ["muennighoff2023"])
def test_unlimited_data_is_the_papers_optimum(name):
    c = NAMED_SETS[name]
    target = c.E + np.array([0.05, 0.3, 1.0, 2.0])[:, None]
    demand = np.array([0.0, 1e9, 1e12, 1e15])[None, :]
    plain = compute_optimal(c, target, demand)
    for u in (math.inf, plain.tokens, plain.tokens * 3.0):  # U = inf, or at least Eq. 4's D*
        opt = dc.compute_optimal_constrained(c, target, demand, u)
        np.testing.assert_allclose(opt.params, plain.params, rtol=1e-9, atol=0)
        np.testing.assert_allclose(opt.tokens, plain.tokens, rtol=1e-9, atol=0)
        assert not np.any(opt.binds)
        np.testing.assert_array_equal(opt.epochs, plain.tokens / u)
    # the cost form too
    s, d = CostSettings(), InferenceDemand(1e9, 70, 215)
    got, ref = dc.cost_optimal_constrained(c, c.E + 0.5, s, d, math.inf), cost_optimal(c, c.E + 0.5, s, d)
    assert (float(got.params), float(got.tokens)) == (float(ref.params), float(ref.tokens))


@pytest.mark.parametrize("name", PAPER_SETS + ["muennighoff2023"])
def test_repeating_branch_without_decay_is_the_papers_optimum(name):
    # R* = inf makes repeated tokens as good as fresh ones: the repeating-branch solver, forced by
    # U below D*, must land on Eq. 4's optimum (a check of the solver to far below 1e-9)
    c = NAMED_SETS[name]
    rng = np.random.default_rng(1)
    target, demand = c.E + rng.uniform(0.05, 2.0, 400), 10 ** rng.uniform(0, 16, 400)
    plain = compute_optimal(c, target, demand)
    u = plain.tokens * 10 ** rng.uniform(-4, -1e-3, 400)
    opt = dc.compute_optimal_constrained(c, target, demand, u, dc.NO_DECAY)
    assert np.all(opt.binds)
    np.testing.assert_allclose(opt.params, plain.params, rtol=1e-12)
    np.testing.assert_allclose(opt.tokens, plain.tokens, rtol=1e-11)


def _brute_force(c, target, demand, u):
    """The cheapest of 20,001 models spread over log N, each with the tokens tokens_for_loss finds
    in whichever regime it lands (repeating, one pass, excess params): no assumption on the branch."""
    n0 = float(compute_optimal(c, target, demand).params)
    n = n0 * np.logspace(-2.5, 2.5, 20001)
    d = dc.tokens_for_loss(c, n, target, u, unreachable="inf")
    flops = total_flops(n, d, demand)
    i = int(np.nanargmin(flops))
    return flops[i], d[i]


@pytest.mark.parametrize("name,gap,demand,share", [
    ("muennighoff2023", 0.4, 0.0, 0.2), ("muennighoff2023", 0.8, 1e12, 0.05), ("chinchilla", 0.3, 1e13, 0.3),
    ("chinchilla", 1.5, 1e6, 0.1), ("sardana-all", 0.7, 1e11, 0.1), ("sardana-le100", 0.5, 1e14, 0.5),
])
def test_optimizer_is_the_constrained_minimum(name, gap, demand, share):
    c = NAMED_SETS[name]
    target = c.E + gap
    u = float(compute_optimal(c, target, demand).tokens) * share
    opt = dc.compute_optimal_constrained(c, target, demand, u)
    assert bool(opt.binds) and float(opt.tokens) > u
    assert float(dc.loss(c, opt.params, opt.tokens, u)) == pytest.approx(target, rel=1e-13)
    best, best_tokens = _brute_force(c, target, demand, u)
    assert float(total_flops(opt.params, opt.tokens, demand)) <= best * (1 + 1e-12)
    assert best_tokens > u  # the brute force, free to pick any branch, repeats data too
    np.testing.assert_allclose(opt.epochs, opt.tokens / u, rtol=1e-15)


@pytest.mark.parametrize("name", PAPER_SETS + ["muennighoff2023"])
def test_less_unique_data_needs_more_compute(name):
    c = NAMED_SETS[name]
    for gap, demand in ((0.3, 0.0), (1.0, 1e10), (0.5, 1e13)):
        target = c.E + gap
        u = float(compute_optimal(c, target, demand).tokens) * np.logspace(0.5, -1.5, 60)
        u = u[dc.loss_floor(c, u) < target]
        opt = dc.compute_optimal_constrained(c, target, demand, u)
        flops = total_flops(opt.params, opt.tokens, demand)
        assert np.all(np.diff(flops) >= -1e-12 * flops[1:]) and flops[-1] > flops[0]
        assert np.all(np.diff(opt.epochs) >= 0)  # and more epochs of the smaller data
        assert not opt.binds[0] and opt.binds[-1] and opt.epochs[0] < 1 < opt.epochs[-1]


def test_optimizer_broadcasts():
    target = M.E + np.array([0.45, 0.7, 1.0])[:, None, None]
    demand = np.array([0.0, 1e12])[None, :, None]
    u = np.array([1e10, 1e11, 1e12, math.inf])[None, None, :]
    opt = dc.compute_optimal_constrained(M, target, demand, u)
    assert opt.params.shape == opt.tokens.shape == opt.epochs.shape == opt.binds.shape == (3, 2, 4)
    for i, j, k in np.ndindex(3, 2, 4):
        one = dc.compute_optimal_constrained(M, target[i, 0, 0], demand[0, j, 0], u[0, 0, k])
        assert float(one.params) == pytest.approx(opt.params[i, j, k], rel=1e-14)
        assert float(one.tokens) == pytest.approx(opt.tokens[i, j, k], rel=1e-13)
        assert bool(one.binds) == opt.binds[i, j, k]


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0.0, -1e9, float("nan"), [1e9, -1.0], "many"])
def test_bad_unique_tokens(bad):
    for call in (lambda: dc.compute_optimal_constrained(M, 2.5, 0.0, bad), lambda: dc.loss(M, 1e9, 1e10, bad),
                 lambda: dc.tokens_for_loss(M, 1e9, 2.5, bad), lambda: dc.epochs(1e10, bad)):
        with pytest.raises(InputError, match=r"^unique tokens must be a number > 0 \(or inf\), got ") as info:
            call()
        assert "\n" not in str(info.value)


def test_unreachable_target_under_a_small_budget():
    u = 1e8
    floor = float(dc.loss_floor(M, u))
    with pytest.raises(InputError, match=r"out of reach with 1e\+08 unique tokens .*U \(1 \+ R_D\*\) = 1\.639e\+09 "
                                         r"tokens .*no model goes below loss") as info:
        dc.compute_optimal_constrained(M, floor - 0.01, 1e9, u)
    assert "\n" not in str(info.value)
    assert f"{floor:.6g}" in str(info.value)
    opt = dc.compute_optimal_constrained(M, floor + 0.01, 1e9, u)  # just above the floor: many epochs
    assert bool(opt.binds) and float(opt.epochs) > 10
    with pytest.raises(InputError, match="floor"):
        dc.compute_optimal_constrained(M, M.E, 0.0, math.inf)
    with pytest.raises(InputError, match="inference tokens"):
        dc.compute_optimal_constrained(M, 2.5, -1.0, 1e10)
    with pytest.raises(InputError, match="r d star"):
        dc.RepetitionConstants(r_d_star=0.0, r_n_star=5.0)
