"""The batched L-BFGS on its own (scaling/lbfgs.py): against scipy's L-BFGS-B on smooth problems,
and a start's result independent of the rest of the batch."""

import inspect

import numpy as np
import pytest
from scipy.optimize import minimize

import scaling.lbfgs as lbfgs
from scaling.lbfgs import SCIPY_RULE, STRICT_RULE, batched_lbfgs, sharded_lbfgs

# an ill-conditioned quadratic 1/2 (x - m)' H (x - m) with off-diagonal terms (condition ~1e3)
_Q = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
H = _Q @ np.diag([1.0, 10.0, 100.0, 1000.0]) @ _Q.T
M = np.array([1.0, -2.0, 3.0, 0.5])


def quadratic(theta, targets=None):
    """Batched; ``targets[S, 4]`` (optional) moves each row's minimum (per-row data)."""
    r = theta - (M if targets is None else targets)
    # column by column, no matmul: a row's value must not depend on the other rows
    hr = np.stack([sum(H[i, j] * r[:, j] for j in range(4)) for i in range(4)], axis=1)
    return 0.5 * sum(r[:, i] * hr[:, i] for i in range(4)), hr


def rosenbrock(theta):
    """Batched extended Rosenbrock: sum_i 100 (x_i+1 - x_i^2)^2 + (1 - x_i)^2, minimum 0 at all ones."""
    x = theta
    p = x.shape[1]
    f = np.zeros(x.shape[0])
    g = np.zeros_like(x)
    for i in range(p - 1):
        u = x[:, i + 1] - x[:, i] ** 2
        f += 100.0 * u**2 + (1.0 - x[:, i]) ** 2
        g[:, i] += -400.0 * x[:, i] * u - 2.0 * (1.0 - x[:, i])
        g[:, i + 1] += 200.0 * u
    return f, g


def _scipy(fun, x0, **options):
    def one(x):
        f, g = fun(x[None])
        return float(f[0]), g[0]

    return minimize(one, x0, jac=True, method="L-BFGS-B", options=options)


def _starts(p, n, scale, seed):
    return np.random.default_rng(seed).uniform(-scale, scale, size=(n, p))


@pytest.mark.parametrize("p", [2, 5])
def test_rosenbrock_reaches_scipys_minimum(p):
    starts = _starts(p, 40, 2.0, seed=p)
    res = batched_lbfgs(rosenbrock, starts, max_iter=2000)
    strict = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000}
    ref = np.array([_scipy(rosenbrock, x0, **strict).x for x0 in starts])
    ref_f = rosenbrock(ref)[0]
    # extended Rosenbrock in 5-D also has a local minimum near x_0 = -1, and from a start between
    # the two basins the two line searches may take different first steps: where both end in the
    # same basin they agree on the point, and ours is never worse
    same = np.abs(res.theta - ref).max(axis=1) < 0.5
    assert same.mean() >= 0.9
    np.testing.assert_allclose(res.theta[same], ref[same], atol=1e-5)
    assert np.all(res.objective <= ref_f + 1e-9)
    at_global = np.abs(res.theta - 1).max(axis=1) < 1e-6
    assert at_global.sum() >= 0.75 * len(starts)
    assert res.converged.all()


def test_quadratic_reaches_scipys_minimum():
    starts = _starts(4, 30, 10.0, seed=1)
    res = batched_lbfgs(quadratic, starts)
    for x0, x, f in zip(starts, res.theta, res.objective):
        ref = _scipy(quadratic, x0, ftol=1e-15, gtol=1e-10)
        np.testing.assert_allclose(x, ref.x, atol=1e-7)
        np.testing.assert_allclose(x, M, atol=1e-7)
        assert f <= ref.fun + 1e-14
    assert res.converged.all()


def test_scipy_rule_stops_where_scipy_stops():
    # with scipy's default rule the batch stops about where scipy's default L-BFGS-B does: the
    # same objective to the rule's tolerance, in a similar number of iterations
    starts = _starts(2, 30, 2.0, seed=3)
    res = batched_lbfgs(rosenbrock, starts, rule=SCIPY_RULE, max_iter=2000)
    for x0, f, k in zip(starts, res.objective, res.iterations):
        ref = _scipy(rosenbrock, x0)
        assert f == pytest.approx(ref.fun, abs=1e-8)
        assert k <= 2 * ref.nit + 10
    assert res.converged.all()


def test_scipy_rule_is_scipys_default():
    from scipy.optimize._lbfgsb_py import _minimize_lbfgsb

    defaults = inspect.signature(_minimize_lbfgsb).parameters
    assert SCIPY_RULE.ftol == pytest.approx(defaults["ftol"].default, rel=1e-12)
    assert SCIPY_RULE.gtol == defaults["gtol"].default
    assert SCIPY_RULE.floor == 1.0
    assert STRICT_RULE.ftol < SCIPY_RULE.ftol and STRICT_RULE.gtol < SCIPY_RULE.gtol


@pytest.mark.parametrize("rule", [SCIPY_RULE, STRICT_RULE])
@pytest.mark.parametrize("fun,p,scale", [(rosenbrock, 2, 2.0), (rosenbrock, 5, 2.0), (quadratic, 4, 10.0)])
def test_batch_result_equals_each_row_alone(fun, p, scale, rule):
    starts = _starts(p, 25, scale, seed=7)
    batch = batched_lbfgs(fun, starts, rule=rule, max_iter=2000)
    for i, x0 in enumerate(starts):
        alone = batched_lbfgs(fun, x0[None], rule=rule, max_iter=2000)
        np.testing.assert_array_equal(alone.theta[0], batch.theta[i])
        np.testing.assert_array_equal(alone.objective[0], batch.objective[i])
        assert alone.iterations[0] == batch.iterations[i]
        assert alone.converged[0] == batch.converged[i]


def test_row_data_goes_with_its_row():
    rng = np.random.default_rng(4)
    starts, targets = rng.normal(size=(12, 4)) * 5, rng.normal(size=(12, 4)) * 3
    res = batched_lbfgs(quadratic, starts, row_data=targets)
    np.testing.assert_allclose(res.theta, targets, atol=1e-7)
    for i in (0, 5, 11):
        alone = batched_lbfgs(lambda t, i=i: quadratic(t, targets[i:i + 1]), starts[i:i + 1])
        np.testing.assert_array_equal(alone.theta[0], res.theta[i])


def test_sharded_equals_one_batch(monkeypatch):
    # deal the starts to 3 shards, run in this process: reassembled, the same result as one batch
    calls = []

    def serial(fn, jobs, workers):
        calls.append(len(jobs))
        return [fn(job) for job in jobs]

    monkeypatch.setattr(lbfgs, "usable_workers", lambda workers=None: 3)
    monkeypatch.setattr(lbfgs, "map_shards", serial)
    starts = _starts(2, 3 * lbfgs.SHARD_MIN_STARTS, 2.0, seed=5)
    targets = np.random.default_rng(6).normal(size=(starts.shape[0], 4))
    for fun, x0, data in ((rosenbrock, starts, None), (quadratic, np.hstack([starts, starts]), targets)):
        one = batched_lbfgs(fun, x0, rule=SCIPY_RULE, row_data=data)
        sharded = sharded_lbfgs(fun, x0, rule=SCIPY_RULE, row_data=data)
        for a, b in ((one.theta, sharded.theta), (one.objective, sharded.objective),
                     (one.iterations, sharded.iterations), (one.converged, sharded.converged)):
            np.testing.assert_array_equal(a, b)
    assert calls == [3, 3]


def test_non_finite_start_is_returned_untouched_and_max_iter_stops():
    def vg(theta):
        f, g = rosenbrock(theta)
        return np.where(theta[:, 0] > 50, np.inf, f), g

    starts = np.array([[100.0, 0.0], [-1.2, 1.0]])
    res = batched_lbfgs(vg, starts, max_iter=3)
    np.testing.assert_array_equal(res.theta[0], starts[0])
    assert res.iterations.tolist() == [0, 3]
    assert not res.converged.any()
    assert res.objective[1] < rosenbrock(starts[1:])[0][0]
