"""Secure predictions of a trained model for the people of new owner tables, as an MPyC program.

One machine, three parties, each with its own model file from training (``--model-out``)::

    python protocols/predict.py -M3 --left new_insurer.csv --right new_hospital.csv \
        --id patient_id --model lasso_{party}.json --predictions-to 0 \
        --save-predictions predictions.csv

Only party --predictions-to learns the predictions (for its people in the intersection); see
`mpclab.programs.predict`.
"""

from mpclab.cli import run_program

if __name__ == '__main__':
    run_program('predict')
