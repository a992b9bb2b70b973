"""Secure inner join of two or more owners' tables, as an MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/inner_join.py -M3 --left data/insurer.csv --right data/hospital.csv \
        --id patient_id --json join.json

Three hosts: every party runs the same program with the same -P list, its own -I and only
its own file (the helper passes no file):

    python protocols/inner_join.py -P hostA:11365 -P hostB:11365 -P hostH:11365 -I 0 \
        --left insurer.csv --id patient_id --ssl
    python protocols/inner_join.py -P hostA:11365 -P hostB:11365 -P hostH:11365 -I 1 \
        --right hospital.csv --id patient_id --ssl
    python protocols/inner_join.py -P hostA:11365 -P hostB:11365 -P hostH:11365 -I 2 \
        --id patient_id --ssl

Three owners and a helper (party 3): each owner passes its own table as --data::

    python protocols/inner_join.py -M4 --owners 3 --data owner_{party}.csv --id patient_id

Only sizes are revealed, unless --reveal-to I --save-joined PATH opens the joined table to
party I (testing and debugging only: it discloses the joined records).
"""

from mpclab.cli import run_program

if __name__ == '__main__':
    run_program('join')
