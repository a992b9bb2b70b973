"""Secure estimators with scikit-learn's names, for use inside an MPyC program.

    from mpclab.models import SecureLasso, SecureLogisticRegression

Their ``fit`` and ``reveal`` are coroutines on MPyC secure arrays (see each class).  To run a
whole study (join, training, metrics) from Python instead, use ``mpclab.run``.
"""

from mpclab.models.lasso import FixedPointOverflowError, SecureLasso
from mpclab.models.logistic import SecureLogisticRegression

__all__ = ['SecureLasso', 'SecureLogisticRegression', 'FixedPointOverflowError']
