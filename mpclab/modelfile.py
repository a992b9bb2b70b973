"""Model files: a trained model as a party keeps it, and applying a revealed one in Python.

A model program with ``--model-out PATH`` writes, at every party that receives the model, a
JSON file (``{party}`` in PATH becomes the party's number)::

    {"mpclab_model": 1, "kind": "lasso" | "logistic", "features": [...], "coef": [...],
     "intercept": b, "target": "charges", "units": "original" | "scaled",
     "options": {the agreed options of the training run},
     "columns": {"owners": [[...], [...], ...], "left": [...], "right": [...]},
     "trained": {"rows": n, "metrics": {...}, "fingerprint": "...", "model_id": "..."}}

``columns`` lists every owner's columns in owner order (and, as "left" and "right", the first
two owners').  ``units`` says what the coefficients apply to: "original" (the owners' own units, also for
the prediction of a scaled target), or "scaled" (each owner's columns min-max scaled by that
owner, as in training; only the owner knows its scaling, so such a model is applied with
``mpclab predict``, where each owner scales its own columns).

A *secret* model's file holds, instead of "coef" and "intercept", this party's Shamir shares
of them (useless alone, and without the other parties' files) under "secret", with the public
metadata and a model id that all parties' files share.  It never holds a coefficient in the
clear.

`load_model` reads a revealed model for use in Python: ``predict(DataFrame)`` on columns by
name, ``predict_proba`` for logistic regression, and ``to_sklearn()`` for a fitted
scikit-learn estimator that pipelines, joblib and plots take over.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

__all__ = ['FORMAT', 'KINDS', 'ModelFileError', 'write_model', 'read_model', 'load_model',
           'RevealedModel']

FORMAT = 1
KINDS = ('lasso', 'logistic', 'ridge', 'elasticnet')
_REGRESSION = ('lasso', 'ridge', 'elasticnet')


class ModelFileError(ValueError):
    """A model file is missing, unreadable or not an mpclab model."""


def write_model(path: str, model: dict) -> None:
    """Write a model file (mode 0600: a secret model's shares are this party's own)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(model, f, indent=1)
        f.write('\n')


def read_model(path: str) -> dict:
    """Read and check a model file."""
    try:
        with open(path, encoding='utf-8') as f:
            model = json.load(f)
    except FileNotFoundError:
        raise ModelFileError(f'{path}: no such model file') from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f'{path}: not a readable model file ({exc})') from None
    if not isinstance(model, dict) or model.get('mpclab_model') != FORMAT:
        raise ModelFileError(f'{path}: not an mpclab model file (format {FORMAT})')
    if model.get('kind') not in KINDS:
        raise ModelFileError(f'{path}: unknown model kind {model.get("kind")!r}')
    features = model.get('features')
    if not isinstance(features, list) or not all(isinstance(c, str) for c in features):
        raise ModelFileError(f'{path}: no list of features')
    if 'secret' in model:
        shares = model['secret'].get('shares')
        if not isinstance(shares, list) or len(shares) != len(features) + 1:
            raise ModelFileError(f'{path}: the secret model holds {len(shares or [])} shares for '
                                 f'{len(features)} features and an intercept')
    else:
        coef = model.get('coef')
        if not isinstance(coef, list) or len(coef) != len(features) or \
                not all(isinstance(v, (int, float)) and math.isfinite(v) for v in coef):
            raise ModelFileError(f'{path}: coefficients do not match the features')
    if model.get('units') not in ('original', 'scaled'):
        raise ModelFileError(f'{path}: units must be "original" or "scaled"')
    return model


class RevealedModel:
    """A revealed mpclab model, applied in plaintext to a DataFrame's columns by name.

    Attributes
    ----------
    kind : str
    coef_ : ndarray (d,)
    intercept_ : float
    feature_names_in_ : ndarray of str
    units : {'original', 'scaled'}
    metadata : dict
        The whole model file.
    """

    def __init__(self, model: dict):
        if 'secret' in model:
            raise ModelFileError('a secret model holds only shares: apply it with `mpclab '
                                 'predict`, where every party brings its own file')
        self.metadata = model
        self.kind = model['kind']
        self.units = model['units']
        self.target = model.get('target')
        self.feature_names_in_ = np.array(model['features'], dtype=object)
        self.coef_ = np.asarray(model['coef'], dtype=float)
        self.intercept_ = float(model['intercept'])

    def __repr__(self) -> str:
        return (f'<mpclab {self.kind} model: {len(self.coef_)} features, {self.units} units, '
                f'target {self.target!r}>')

    def _matrix(self, X) -> np.ndarray:
        if hasattr(X, 'columns'):
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if missing:
                raise KeyError(f'the model needs column(s) {missing}')
            return X[list(self.feature_names_in_)].to_numpy(dtype=float)
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.coef_):
            raise ValueError(f'expected {len(self.coef_)} columns, got shape {X.shape}')
        return X

    def _check_units(self) -> None:
        if self.units == 'scaled':
            import warnings
            warnings.warn('this model is in min-max scaled units: its inputs must be scaled with '
                          'the training data\'s minimum and maximum, which only each owner knows',
                          stacklevel=3)

    def decision_function(self, X) -> np.ndarray:
        self._check_units()
        return self._matrix(X) @ self.coef_ + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Predictions: values (regression) or 0/1 labels (logistic regression)."""
        z = self.decision_function(X)
        return (z > 0).astype(int) if self.kind == 'logistic' else z

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, 2) of a logistic regression model."""
        if self.kind != 'logistic':
            raise AttributeError(f'a {self.kind} model has no predict_proba')
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack((1 - p, p))

    def to_sklearn(self):
        """The same model as a fitted scikit-learn estimator (with feature_names_in_)."""
        from sklearn import linear_model
        # the hyper-parameters it was fitted with: the agreed ones, or those --cv chose
        options = {**self.metadata.get('options', {}),
                   **self.metadata.get('trained', {}).get('params', {})}
        d = len(self.coef_)
        if self.kind == 'logistic':
            est = linear_model.LogisticRegression(C=options.get('reg_c', 1.0))
            est.coef_ = self.coef_.reshape(1, d)
            est.intercept_ = np.array([self.intercept_])
            est.classes_ = np.array([0, 1])
        else:
            if self.kind == 'ridge':
                est = linear_model.Ridge(alpha=options.get('alpha', 1.0))
            elif self.kind == 'elasticnet':
                est = linear_model.ElasticNet(alpha=options.get('alpha', 1.0),
                                              l1_ratio=options.get('l1_ratio', 0.5))
            else:
                est = linear_model.Lasso(alpha=options.get('alpha', 1.0))
            est.coef_ = self.coef_.copy()
            est.intercept_ = self.intercept_
        est.n_features_in_ = d
        est.feature_names_in_ = self.feature_names_in_.copy()
        return est


def load_model(path: str) -> RevealedModel:
    """Read a revealed model file for use in Python (see `RevealedModel`)."""
    return RevealedModel(read_model(path))


def model_document(kind: str, features: list[str], target: str, units: str, options: dict,
                   columns: dict, trained: dict, coef=None, intercept=None,
                   secret: dict | None = None) -> dict[str, Any]:
    """The JSON document of a model file (exactly one of coef/intercept and secret)."""
    doc: dict[str, Any] = {'mpclab_model': FORMAT, 'kind': kind, 'features': list(features),
                           'target': target, 'units': units}
    if secret is None:
        doc['coef'] = [float(c) for c in coef]
        doc['intercept'] = float(intercept)
    else:
        doc['secret'] = secret
    doc.update({'options': options, 'columns': columns, 'trained': trained})
    return doc


def owner_columns(model: dict) -> list[list[str]]:
    """Every owner's columns in training, in owner order."""
    columns = model.get('columns') or {}
    if 'owners' in columns:
        return [list(c) for c in columns['owners']]
    return [list(columns.get('left', [])), list(columns.get('right', []))]


def columns_entry(owner_columns: list) -> dict:
    """The "columns" entry of a model file for these owners' columns."""
    return {'owners': [list(c) for c in owner_columns], 'left': list(owner_columns[0]),
            'right': list(owner_columns[1])}


__all__ += ['model_document', 'owner_columns', 'columns_entry']
