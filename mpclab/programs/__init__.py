"""The MPyC programs of mpclab, one module each: what a run computes and reveals.

Each module has ``async def run(job) -> dict``, given a `common.Job` (this party's typed
options, session, roles and own tables) after the agreement round, returning this party's
summary.  `mpclab.party` runs them; ``protocols/*.py`` and the ``mpclab`` command start it.
"""

import importlib

__all__ = ['MODULES', 'module']

#: program name -> module
MODULES = {'join': 'mpclab.programs.inner_join', 'lasso': 'mpclab.programs.linear',
           'ridge': 'mpclab.programs.linear', 'elasticnet': 'mpclab.programs.linear',
           'logistic': 'mpclab.programs.logistic', 'describe': 'mpclab.programs.describe',
           'predict': 'mpclab.programs.predict'}


def module(program: str):
    return importlib.import_module(MODULES[program])
