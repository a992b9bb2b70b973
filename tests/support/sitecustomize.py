"""Test hooks for party processes started by the test suite (never part of a deployment).

The suite puts this directory on PYTHONPATH of the party processes it starts, so Python
imports this module at start-up; it installs the hooks that the MPCLAB_TEST_* variables ask
for.  The installed package holds no hook code and reads none of these variables: without
this directory on the path they do nothing.
"""

import os

if any(os.environ.get(v) for v in ('MPCLAB_TEST_FAULT', 'MPCLAB_TEST_RECORD_DIR',
                                   'MPCLAB_TEST_CHECK_OPENINGS', 'MPCLAB_TEST_DUMP_CV',
                                   'MPCLAB_TEST_SIZES')):
    import mpclab_testhooks
    mpclab_testhooks.install_from_environment()
