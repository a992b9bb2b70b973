"""Secure classification metrics against sklearn.metrics on the revealed inputs."""

import numpy as np
import pytest
import sklearn.metrics as skm
from mpyc.runtime import mpc

from mpclab.metrics import classification as cl
from mpclab.models.logistic import predict_from_decision

secfxp = mpc.SecFxp(64, 32)
LABEL_METRICS = [(cl.accuracy_score, skm.accuracy_score),
                 (cl.precision_score, lambda y, p: skm.precision_score(y, p, zero_division=0)),
                 (cl.recall_score, lambda y, p: skm.recall_score(y, p, zero_division=0)),
                 (cl.f1_score, lambda y, p: skm.f1_score(y, p, zero_division=0))]


def secret(a, integral=False):
    return secfxp.array(np.asarray(a, dtype=float), integral=integral)


def reveal(x):
    return mpc.run(mpc.output(x))


def labels(n, p, seed):
    return (np.random.default_rng(seed).uniform(size=n) < p).astype(float)


@pytest.mark.parametrize('n, seed', [(1, 0), (17, 1), (200, 2), (1000, 3), (100_000, 4)])
def test_label_metrics_match_sklearn(n, seed):
    y, yp = labels(n, 0.4, seed), labels(n, 0.5, seed + 100)
    for integral in (False, True):   # data columns are non-integral, predictions integral
        sy, syp = secret(y), secret(yp, integral)
        for ours, theirs in LABEL_METRICS:
            assert reveal(ours(sy, syp)) == pytest.approx(theirs(y, yp), abs=1e-7)
        np.testing.assert_array_equal(np.rint(reveal(cl.confusion_matrix(sy, syp))),
                                      skm.confusion_matrix(y, yp, labels=[0, 1]))


@pytest.mark.parametrize('y, yp', [([0, 0, 1, 1], [0, 0, 0, 0]),     # nothing predicted positive
                                   ([0, 0, 0, 0], [0, 1, 0, 1]),     # no positives
                                   ([0, 0, 0], [0, 0, 0]),           # neither
                                   ([1, 1, 1], [1, 1, 1])])
def test_zero_division_gives_zero_like_sklearn(y, yp):
    y, yp = np.array(y, float), np.array(yp, float)
    for ours, theirs in LABEL_METRICS:
        assert reveal(ours(secret(y), secret(yp))) == pytest.approx(theirs(y, yp), abs=1e-7)


def test_public_array_argument():
    y, yp = labels(50, 0.3, 4), labels(50, 0.6, 5)
    assert reveal(cl.f1_score(y, secret(yp))) == pytest.approx(skm.f1_score(y, yp), abs=1e-7)
    assert reveal(cl.accuracy_score(secret(y), yp)) == pytest.approx(skm.accuracy_score(y, yp), abs=1e-7)


def test_shape_checks():
    with pytest.raises(ValueError):
        cl.accuracy_score(secret(np.zeros(3)), secret(np.zeros(4)))
    with pytest.raises(ValueError):
        cl.roc_auc_score(secret(np.zeros(3)), secret(np.zeros(3)), method='ranks')
    with pytest.raises(TypeError):
        cl.accuracy_score(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize('method', ['pairs', 'sort'])
@pytest.mark.parametrize('n, ties, seed', [(30, False, 0), (45, True, 1), (2, False, 2)])
def test_roc_auc_matches_sklearn(method, n, ties, seed):
    rng = np.random.default_rng(seed)
    y = labels(n, 0.4, seed)
    y[:2] = [0, 1]
    s = rng.normal(size=n) + y
    if ties:
        s = np.round(s * 2) / 2   # many tied scores across the classes
    auc = reveal(cl.roc_auc_score(secret(y), secret(s), method=method))
    assert auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-7)


@pytest.mark.parametrize('method', ['pairs', 'sort', 'auto'])
def test_roc_auc_of_labels_and_of_probabilities(method):
    y, yp = labels(40, 0.5, 6), labels(40, 0.5, 7)
    y[:2], yp[:2] = [0, 1], [1, 0]
    auc = reveal(cl.roc_auc_score(secret(y), secret(yp, integral=True), method=method))
    assert auc == pytest.approx(skm.roc_auc_score(y, yp), abs=1e-7)   # all ties
    p = np.random.default_rng(8).uniform(size=40)
    assert reveal(cl.roc_auc_score(secret(y), secret(p), method=method)) == \
        pytest.approx(skm.roc_auc_score(y, p), abs=1e-7)


def test_metrics_of_secret_predictions():
    rng = np.random.default_rng(9)
    z = rng.normal(0, 2, 120)
    y = (rng.uniform(size=120) < 1 / (1 + np.exp(-z))).astype(float)
    sz, sy = secret(z), secret(y)
    pred = predict_from_decision(sz)
    yp = np.asarray(reveal(pred))
    np.testing.assert_array_equal(yp, (z > 0).astype(float))
    out = reveal([m(sy, pred) for m, _ in LABEL_METRICS] + [cl.roc_auc_score(sy, sz)])
    want = [f(y, yp) for _, f in LABEL_METRICS] + [skm.roc_auc_score(y, z)]
    np.testing.assert_allclose(out, want, atol=1e-7)


@pytest.mark.parametrize('y, both', [([0, 0, 0, 0], 0), ([1, 1, 1], 0), ([0, 1, 0], 1), ([1], 0),
                                     ([1, 0], 1)])
def test_both_classes(y, both):
    """The bit to open before the AUC: with one class the AUC is undefined (sklearn raises)."""
    y = np.array(y, dtype=float)
    for integral in (False, True):
        assert reveal(cl.both_classes(secret(y, integral))) == both
    if not both:   # scikit-learn raises (older) or warns and returns nan (newer)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            try:
                assert np.isnan(skm.roc_auc_score(y, np.arange(len(y))))
            except ValueError:
                pass
    with pytest.raises(TypeError):
        cl.both_classes(y)


def test_too_many_rows_for_counts():
    from mpclab.bounds import FixedPointOverflowError

    with pytest.raises(FixedPointOverflowError, match='rows overflow'):
        cl._check_rows(2**30, secfxp)
