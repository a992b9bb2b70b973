"""Model files: revealed models in the owners' original units, secret models as shares only."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, LogisticRegression

import mpclab
from mpclab.data import load_party_table
from mpclab.fixedpoint import FixedPointFormat
from mpclab.twin import plaintext_join, plaintext_split
from partyrun import PROTOCOLS, integer_needles, leaks, run_separate, write_tables as write

pytestmark = pytest.mark.slow
WIDE = FixedPointFormat(int_bits=20)   # the owners' raw values, for the plaintext twin
LASSO = os.path.join(PROTOCOLS, 'lasso.py')
LOGISTIC = os.path.join(PROTOCOLS, 'logistic.py')


def owner_tables(seed, n=300, classify=False):
    """Two owners' tables in their own units: ages, weights, costs, a 0/1 outcome."""
    rng = np.random.default_rng(seed)
    ids = [f'p{i}' for i in rng.permutation(3 * n)]
    left_ids, right_ids = ids[:n], ids[:int(0.9 * n)] + ids[n:n + n // 10]
    age = rng.uniform(18, 90, n)
    income = rng.uniform(1_000, 90_000, n)
    left = pd.DataFrame({'id': left_ids, 'age': age, 'income': income})
    weight = rng.uniform(45, 140, n)
    smoker = rng.integers(0, 2, n).astype(float)
    by_id = dict(zip(left_ids, zip(age, income)))
    a = np.array([by_id.get(i, (50, 40_000))[0] for i in right_ids])
    signal = 40 * a + 25 * weight + 9_000 * smoker + rng.normal(0, 800, n)
    right = pd.DataFrame({'id': right_ids, 'weight': weight, 'smoker': smoker})
    if classify:
        z = (a - 50) / 15 + (weight - 90) / 25 + smoker - 0.3 + rng.logistic(0, 0.5, n)
        right['event'] = (z > 0).astype(float)
    else:
        right['cost'] = signal
    return left, right


def scalings(lp, rp):
    """Each owner's own min and max (of its whole table), as the owners scale."""
    out = {}
    for path in (lp, rp):
        out.update(load_party_table(path, 'id', scale='minmax').scaling)
    return out


def original_units(coef, intercept, features, scaling, target=None):
    """scikit-learn's scaled-units model in the owners' units (the plaintext conversion)."""
    lo = np.array([scaling[f][0] for f in features])
    r = np.array([scaling[f][1] - scaling[f][0] for f in features])
    w = np.where(r > 0, coef / np.where(r > 0, r, 1), 0.0)
    b = intercept - w @ lo
    if target is not None:
        lo_y, hi_y = scaling[target]
        w, b = w * (hi_y - lo_y), b * (hi_y - lo_y) + lo_y
    return w, b


def run(program, tmp_path, lp, rp, extra, parties=3, env=None):
    common = ['--id', 'id', '--scale', 'minmax', '--split', 'seeded', '--seed', '5',
              '--test-fraction', '0.2', '--model-out', str(tmp_path / 'model_{party}.json'),
              '--json', str(tmp_path / 'summary_{party}.json'), *extra]
    args = [['--left', lp] + common, ['--right', rp] + common] + [common] * (parties - 2)
    results = run_separate(program, args, timeout=400, env=env)
    for code, _, err in results:
        assert code == 0, err
    models = [tmp_path / f'model_{i}.json' for i in range(parties)]
    summaries = [json.loads((tmp_path / f'summary_{i}.json').read_text()) for i in range(parties)]
    return models, summaries


@pytest.mark.parametrize('parties', [3, 4])
def test_a_lasso_model_file_is_scikit_learns_model_in_the_owners_units(tmp_path, parties):
    left, right = owner_tables(parties)
    lp, rp = write(tmp_path, left, right)
    models, summaries = run(LASSO, tmp_path, lp, rp, ['--target', 'cost', '--alpha', '0.0005',
                                                      '--tol', '1e-6'], parties)
    doc = json.loads(models[0].read_text())
    assert doc['mpclab_model'] == 1 and doc['kind'] == 'lasso' and doc['units'] == 'original'
    assert doc['trained']['fingerprint'] == summaries[0]['fingerprint']
    assert len({json.loads(m.read_text())['trained']['model_id'] for m in models}) == 1
    joined = plaintext_join(lp, rp, 'id', scale='minmax')
    train, test = plaintext_split(joined, 'id', 5, 0.2)
    test_ids = joined['id'][test.index]
    features = doc['features']
    sk = Lasso(alpha=0.0005, tol=1e-8, max_iter=100_000).fit(train[features], train['cost'])
    w, b = original_units(sk.coef_, sk.intercept_, features, scalings(lp, rp), 'cost')
    np.testing.assert_allclose(doc['coef'], w, rtol=1e-3, atol=1e-3 * np.abs(w).max())
    # the intercept is a difference of large terms (b' r_y + lo_y − Σ w_j lo_j): compare it at
    # the scale of what it adds up to, the predictions
    lo_y, hi_y = scalings(lp, rp)['cost']
    assert doc['intercept'] == pytest.approx(b, abs=1e-3 * (hi_y - lo_y))
    # applied in Python to a patient's real values, it predicts as the plaintext model does
    raw = plaintext_join(lp, rp, 'id', fmt=WIDE).set_index('id').loc[test_ids]
    model = mpclab.load_model(str(models[1]))
    expected = sk.predict(test[features]) * (hi_y - lo_y) + lo_y
    np.testing.assert_allclose(model.to_sklearn().predict(raw[features]), expected, rtol=1e-3)
    np.testing.assert_allclose(model.predict(raw[features]), expected, rtol=1e-3)
    # the test metrics are in the target's units too
    m = summaries[0]['metrics']
    assert m['mae'] == pytest.approx(np.abs(raw['cost'].to_numpy() - expected).mean(), rel=2e-2)
    assert m['objective'] is None   # a scaled-units figure: it would tell the target's range


def test_a_logistic_model_file_converts_back_and_works_in_scikit_learn(tmp_path):
    left, right = owner_tables(7, n=400, classify=True)
    lp, rp = write(tmp_path, left, right)
    models, _ = run(LOGISTIC, tmp_path, lp, rp, ['--target', 'event', '--reg-c', '2.0', '--auc', 'none'])
    doc = json.loads(models[2].read_text())
    joined = plaintext_join(lp, rp, 'id', scale='minmax')
    train, test = plaintext_split(joined, 'id', 5, 0.2)
    test_ids = joined['id'][test.index]
    features = doc['features']
    sk = LogisticRegression(C=2.0, tol=1e-10, max_iter=10_000).fit(train[features], train['event'])
    w, b = original_units(sk.coef_[0], sk.intercept_[0], features, scalings(lp, rp))
    np.testing.assert_allclose(doc['coef'], w, rtol=2e-3, atol=2e-3 * np.abs(w).max())
    assert doc['intercept'] == pytest.approx(b, rel=2e-3, abs=2e-3)
    raw = plaintext_join(lp, rp, 'id', fmt=WIDE).set_index('id').loc[test_ids]
    est = mpclab.load_model(str(models[0])).to_sklearn()
    assert list(est.feature_names_in_) == features
    p = est.predict_proba(raw[features])[:, 1]
    np.testing.assert_allclose(p, sk.predict_proba(test[features])[:, 1], atol=2e-3)


def coefficient_needles(values):
    """Byte patterns of coefficients known to about 2**-20: text, float64, and their
    fixed-point encodings without the last 12 bits (any bit alignment)."""
    out = {}
    for v in values:
        if abs(v) < 1e-3:
            continue
        text = repr(float(v))   # as JSON writes it: its first four decimals (not rounded)
        if 'e' not in text:
            out[f'text {text}'] = text[:text.index('.') + 5].encode()
        e = int(abs(v) * 2**32) >> 12
        for k in (e - 1, e, e + 1):
            out.update(integer_needles(k, min_bytes=4))
    return out


def secret_values(docs):
    """The secret model's field elements (in [0, p)) and p, recombined by MPyC from every
    party's shares in its file (party i holds the point i + 1): what the wire would carry if
    it leaked."""
    from mpyc import finfields, thresha
    p = int(docs[0]['secret']['field_modulus'])
    field = finfields.GF(p)
    points = [(d['secret']['party'] + 1, [field(int(s)) for s in d['secret']['shares']]) for d in docs]
    return [int(v.value) % p for v in thresha.recombine(field, points)], p


def test_a_secret_model_leaves_only_shares_in_files_and_on_the_wire(tmp_path):
    left, right = owner_tables(11)
    lp, rp = write(tmp_path, left, right)
    extra = ['--target', 'cost', '--alpha', '0.0005', '--tol', '1e-6']
    (tmp_path / 'revealed').mkdir()
    revealed, _ = run(LASSO, tmp_path / 'revealed', lp, rp, extra)
    known = json.loads(revealed[0].read_text())
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    (tmp_path / 'secret').mkdir()
    secret, summaries = run(LASSO, tmp_path / 'secret', lp, rp, extra + ['--secret-model'], env=env)
    docs = [json.loads(m.read_text()) for m in secret]
    assert all('coef' not in d and 'intercept' not in d for d in docs)
    assert all('coef' not in s and s['model']['secret'] for s in summaries)
    assert [d['secret']['party'] for d in docs] == [0, 1, 2]
    assert len({d['secret']['model_id'] for d in docs}) == 1
    assert len({tuple(d['secret']['shares']) for d in docs}) == 3   # each its own shares
    needles = coefficient_needles([*known['coef'], known['intercept']])
    assert needles
    for path in secret:
        data = path.read_bytes()
        assert not [k for k, p in needles.items() if p in data], path
    wire = b''.join((record / n).read_bytes() for n in os.listdir(record))
    assert len(wire) > 10_000
    # 4-byte needles meet a few MB of random shares by chance (this run's handshake once held
    # one): a hit counts only with the value's bits in the partial bytes beside it as well
    assert not leaks(wire, needles)
    # the exact secret values, reconstructed from the files, as field elements and as their
    # magnitudes: every whole byte of them at every bit alignment (a coefficient's 32 to 46
    # bits leave 4 or 5 bytes; the partial bytes beside a hit must agree too)
    values, p = secret_values(docs)
    exact = {}
    for v in values:
        assert min(v, p - v) < 2**80          # a fixed-point coefficient, not noise
        for u in (v, p - v):
            exact.update(integer_needles(u, min_bytes=4))
    assert not leaks(wire, exact)
    # the detector finds each value of 32 bits or more where a message would carry it
    carried = b''.join(int(v).to_bytes(18, 'little') for v in values)
    found = {int(name.split(' ')[0]) for name in leaks(carried, exact)}
    assert found >= {v for v in values if v.bit_length() >= 32} and len(found) >= 3
    # the detector works: the revealed file holds the coefficients
    assert [k for k, p in needles.items() if p in revealed[0].read_bytes()]
    assert os.stat(secret[0]).st_mode & 0o077 == 0   # shares are private to their party


def test_load_model_refuses_a_secret_model_and_explains(tmp_path):
    path = tmp_path / 'm.json'
    path.write_text(json.dumps({'mpclab_model': 1, 'kind': 'lasso', 'features': ['a'],
                                'units': 'original', 'secret': {'shares': ['1', '2']}}))
    with pytest.raises(ValueError, match='secret model holds only shares'):
        mpclab.load_model(str(path))
    path.write_text('{"not": "a model"}')
    with pytest.raises(ValueError, match='not an mpclab model'):
        mpclab.load_model(str(path))
