import sys

# MPyC parses sys.argv when it is imported; keep pytest's own flags away from it.
_argv, sys.argv = sys.argv, sys.argv[:1]
import mpyc.runtime  # noqa: E402,F401
sys.argv = _argv
