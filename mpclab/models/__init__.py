"""Secure estimators with scikit-learn's names, for use inside an MPyC program.

    from mpclab.models import SecureLasso, SecureRidge, SecureLassoCV, SecureLogisticRegression

Their ``fit`` and ``reveal`` are coroutines on MPyC secure arrays (see each class).  To run a
whole study (join, training, metrics) from Python instead, use ``mpclab.run``.
"""

from mpclab.models.lasso import FixedPointOverflowError, SecureLasso
from mpclab.models.linear import SecureElasticNet, SecureRidge
from mpclab.models.logistic import SecureLogisticRegression
from mpclab.models.selection import SecureElasticNetCV, SecureLassoCV, SecureRidgeCV

__all__ = ['SecureLasso', 'SecureElasticNet', 'SecureRidge', 'SecureLassoCV', 'SecureElasticNetCV',
           'SecureRidgeCV', 'SecureLogisticRegression', 'FixedPointOverflowError']
