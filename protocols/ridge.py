"""Secure inner join + ridge regression + secure test metrics, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/ridge.py -M3 --left data/insurer.csv --right data/hospital.csv \
        --id patient_id --target charges --scale minmax --alpha 1.0 --json ridge.json

The same as ``mpclab ridge``; see mpclab/programs/linear.py for the options (--cv K with
--alphas or --n-alphas chooses alpha by cross-validation in MPC) and for what is opened.
"""

from mpclab.cli import run_program

if __name__ == '__main__':
    run_program('ridge')
