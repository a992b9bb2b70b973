"""Secure inner join + descriptive statistics of the joined table, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/describe.py -M3 --left data/insurer.csv --right data/hospital.csv \
        --id patient_id --histogram age bmi --bins 10 --json describe.json --plot describe.png

Three hosts: the same program on each, with one -P per party, its own -I and only its own
file (see protocols/inner_join.py and the README).

Revealed: table sizes, the intersection size, per column the mean, standard deviation, min
and max, the correlation matrix (exactly: the column sums and sums of products), and per
histogram cell its count if at least --min-count (default 5), else only that it is
suppressed.  The min and max are values of real people: the owner of a column learns that
someone with that value is in the intersection.  See mpclab/programs/describe.py.
"""

from mpclab.cli import run_program

if __name__ == '__main__':
    run_program('describe')
