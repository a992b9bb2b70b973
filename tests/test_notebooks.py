"""Execute every notebook under notebooks/ from top to bottom; any cell error fails the test.

The notebooks check their secure results against scikit-learn with `assert`s, so a library
change that breaks them fails here.  Each runs on a copy in memory, in a fresh kernel of this
interpreter, from the notebooks/ directory (so ../data works); nothing is written back.

To refresh the outputs stored in a notebook after changing it or the library (not done by
pytest):

    python tests/test_notebooks.py --store notebooks/tour.ipynb
"""

import copy
import glob
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, 'notebooks')
CELL_TIMEOUT = 600   # seconds; the whole tour takes well under a minute on 2 cores


def notebook_paths():
    return sorted(glob.glob(os.path.join(NOTEBOOKS, '*.ipynb')))


def execute(nb):
    """Run nb in place in a fresh 'python3' kernel; raises CellExecutionError on any error.

    jupyter_client resolves the 'python3' kernel of the running interpreter's ipykernel
    even if no kernel spec is installed, so this needs no `ipykernel install`.
    """
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name='python3', allow_errors=False,
                            resources={'metadata': {'path': NOTEBOOKS}})
    client.execute()
    return nb


def test_there_are_notebooks():
    assert notebook_paths(), f'no notebooks in {NOTEBOOKS}'


@pytest.mark.parametrize('path', notebook_paths(), ids=os.path.basename)
def test_stored_notebook_has_no_errors(path):
    """Stored outputs, if any, come from a clean run: no error outputs, executed in order."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    counts = []
    for cell in nb.cells:
        if cell.cell_type != 'code':
            continue
        assert not any(o.output_type == 'error' for o in cell.outputs), cell.source[:80]
        if cell.execution_count is not None:
            counts.append(cell.execution_count)
    assert counts in ([], list(range(1, len(counts) + 1))), 'outputs are not from one clean run'


@pytest.mark.slow
@pytest.mark.parametrize('path', notebook_paths(), ids=os.path.basename)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    executed = execute(copy.deepcopy(nb))
    code = [c for c in executed.cells if c.cell_type == 'code']
    assert code and all(c.execution_count is not None for c in code)


if __name__ == '__main__':
    if sys.argv[1:2] != ['--store'] or len(sys.argv) < 3:
        sys.exit(f'usage: python {sys.argv[0]} --store NOTEBOOK...')
    for path in sys.argv[2:]:
        nb = execute(nbformat.read(path, as_version=4))
        nbformat.write(nb, path)
        print(f'executed and stored {path}')
