"""Secure classification metrics against sklearn.metrics on the revealed inputs."""

import numpy as np
import pytest
import sklearn.metrics as skm
from mpyc.runtime import mpc

from mpclab.blocks import RowBlocks
from mpclab.metrics import classification as cl
from mpclab.metrics import histogram
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


@pytest.mark.parametrize('rows_y, rows_p', [(64, 64), (50, 333), (1000, 1000)])
def test_label_metrics_of_row_blocks(rows_y, rows_p):
    y, yp = labels(500, 0.4, 11), labels(500, 0.5, 12)
    by, bp = RowBlocks.from_array(secret(y), rows_y), RowBlocks.from_array(secret(yp, True), rows_p)
    for a, b in [(by, bp), (by, secret(yp, True)), (secret(y), bp), (y, bp)]:
        for ours, theirs in LABEL_METRICS:
            assert reveal(ours(a, b)) == pytest.approx(theirs(y, yp), abs=1e-7)
        np.testing.assert_array_equal(np.rint(reveal(cl.confusion_matrix(a, b))),
                                      skm.confusion_matrix(y, yp, labels=[0, 1]))
    assert reveal(cl.both_classes(by)) == 1
    assert reveal(cl.both_classes(RowBlocks.from_array(secret(np.zeros(300)), 64))) == 0


def auc_bound(s, y, bits, width):
    """Largest error of the histogram AUC: the share of positive-negative pairs whose squashed
    scores are within `width` scale steps (those may tie or swap)."""
    v = s * (2**bits)
    pos, neg = np.sort(v[y == 1]), np.sort(v[y == 0])
    close = np.searchsorted(neg, pos + width) - np.searchsorted(neg, pos - width)
    return close.sum() / (len(pos) * len(neg))


@pytest.mark.parametrize('n, bits, rows', [(300, 14, 300), (600, 14, 250), (1500, 10, 777),
                                           (700, 6, 100)])
def test_histogram_auc_matches_sklearn_within_its_resolution(n, bits, rows):
    rng = np.random.default_rng(n + bits)
    z = rng.normal(0, 2, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)
    sy, sz = RowBlocks.from_array(secret(y), rows), RowBlocks.from_array(secret(z), rows)
    want = skm.roc_auc_score(y, z)
    width = 2 * histogram.rounding_units(1, 0) + 2
    got = reveal(cl.roc_auc_score(sy, sz, bits=bits, method='histogram'))
    assert abs(got - want) <= auc_bound(1 / (1 + np.exp(-z)), y, bits, width) + 1e-7
    p = rng.uniform(0.2, 0.9, n)       # probabilities, on a linear scale
    got = reveal(cl.roc_auc_score(y, RowBlocks.from_array(secret(p), rows), bits=bits,
                                  score_range=(0, 1)))
    assert abs(got - skm.roc_auc_score(y, p)) <= auc_bound(p, y, bits, width) + 1e-7


def test_histogram_auc_of_integral_scores_is_exact_with_ties_as_half():
    """Integral scores (e.g. predicted labels) on an integer range are mapped exactly."""
    rng = np.random.default_rng(13)
    s = rng.integers(0, 8, 600).astype(float)
    y = (rng.uniform(size=600) < s / 8).astype(float)
    got = reveal(cl.roc_auc_score(secret(y), secret(s, integral=True), score_range=(0, 8), bits=8))
    assert got == pytest.approx(skm.roc_auc_score(y, s), abs=1e-7)
    yp = (s > 3).astype(float)
    got = reveal(cl.roc_auc_score(secret(y), secret(yp, integral=True), score_range=(0, 1)))
    assert got == pytest.approx(skm.roc_auc_score(y, yp), abs=1e-7)


def test_auto_method_is_the_histogram_beyond_128_rows(monkeypatch):
    used = []
    monkeypatch.setattr(histogram, 'auc_parts', lambda *a, **k: used.append(a[1]) or
                        histogram_auc_parts(*a, **k))
    y, z = labels(200, 0.5, 14), np.random.default_rng(15).normal(size=200)
    reveal(cl.roc_auc_score(secret(y), secret(z)))
    assert used == [200]
    assert cl._method(cl.PAIRS_MAX, 'auto') == 'pairs'     # not run: 8128 comparisons


histogram_auc_parts = histogram.auc_parts


def test_memory_check_refuses_the_sort_of_ten_thousand_rows_up_front():
    assert cl.check_roc_auc_memory(100_000, limit_bytes=2 * 2**30) < 2**30   # the histogram
    with pytest.raises(cl.AUCMemoryError, match="10000 predictions by the 'sort' method.*histogram"):
        cl.check_roc_auc_memory(10_000, 'sort', limit_bytes=4 * 2**30)
    assert cl.roc_auc_memory(10_000, 'sort') > 8 * 2**30 > cl.roc_auc_memory(1000, 'sort')
