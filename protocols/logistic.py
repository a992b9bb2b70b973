"""Secure inner join + logistic regression + secure evaluation, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/logistic.py -M3 --left data/heart_clinic.csv --right data/heart_hospital.csv \
        --id patient_id --target DEATH_EVENT --scale minmax --reg-c 1.0 --json logistic.json

Add --secret-model to keep the model secret from everyone: it is trained, used for the test
predictions and scored in MPC, and only the metrics are opened.  Otherwise the coefficients go
to the parties in --model-to (default all).  The target must be 0/1; either owner may hold it.

Revealed: table sizes, the intersection size, the test-set size, the number of Newton steps
(one bit per step; none with --fixed-iterations), the metrics (accuracy, precision, recall, F1,
ROC AUC, confusion matrix on the test rows) and, unless --secret-model, the model.  With
--cv K --cs C1 C2 ...: also the mean held-out accuracy of every candidate and the chosen C
(see mpclab/programs/logistic.py for the full list).
"""

from mpclab.cli import run_program

if __name__ == '__main__':
    run_program('logistic')
