import os
import sys

# MPyC parses sys.argv when it is imported; keep pytest's own flags away from it.
_argv, sys.argv = sys.argv, sys.argv[:1]
import mpyc.runtime  # noqa: E402,F401
sys.argv = _argv

# Test hooks (tests/support): every party process the suite starts imports them at start-up
# through sitecustomize, and every opening of masked values is checked against its range.
# This checkout's mpclab comes next, so that a party process runs the code under test even
# where mpclab is installed (editable) from another checkout.
SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'support')
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SUPPORT)
os.environ['PYTHONPATH'] = os.pathsep.join(
    [SUPPORT, CHECKOUT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
os.environ.setdefault('MPCLAB_TEST_CHECK_OPENINGS', '1')

import mpclab_testhooks  # noqa: E402

if os.environ['MPCLAB_TEST_CHECK_OPENINGS'] == '1':
    mpclab_testhooks.install_opening_check()
