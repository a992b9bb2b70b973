"""mpclab: privacy-preserving analytics on vertically partitioned data with MPyC.

Two data owners hold different columns about the same people.  mpclab joins their tables
securely (keyed hashing + Paillier via a helper party), leaves the joined table
secret-shared among all MPyC parties, and trains and evaluates models on it:
Lasso and logistic regression.  Only the agreed outputs are ever revealed.

From Python, ``mpclab.run('lasso', left=..., right=..., id=..., target=...)`` runs a study's
parties on this machine and returns a `mpclab.api.Result`; ``mpclab.run_party`` runs one
party of a study across hosts.  Importing mpclab does not import MPyC.
"""

__version__ = '0.2.0'

__all__ = ['run', 'run_party', 'Result', 'RunError', 'load_model']


def __getattr__(name):
    # Lazily: the API must not import MPyC (which reads the command line) or pandas eagerly.
    if name == 'load_model':
        from mpclab.modelfile import load_model
        return load_model
    if name in __all__:
        from mpclab import api
        return getattr(api, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
