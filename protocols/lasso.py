"""The main job: secure inner join + Lasso regression + secure test metrics, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/lasso.py -M3 --left data/insurer.csv --right data/hospital.csv \
        --id patient_id --target charges --scale minmax --alpha 0.001 --json lasso.json

Three hosts: the same program on each, with one -P per party, its own -I and only its own
file (see protocols/inner_join.py and the README).  The target may be held by either owner.

Revealed: table sizes, the intersection size, the test-set size, the iteration count (one
bit per iteration of the stopping rule; none with --fixed-iterations), the coefficients to
the parties in --model-to (default all), and the test metrics (R², MSE, MAE, objective) to all.
With --cv K (and --alphas or --n-alphas) also alpha_ and the mean validation MSE of every
candidate (see mpclab/programs/linear.py).
"""

from mpclab.cli import run_program

if __name__ == '__main__':
    run_program('lasso')
