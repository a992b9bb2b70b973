"""Split the Medical Costs data (data/insurance.csv) into an insurer's and a hospital's table.

    python experiments/make_demo_data.py                      # writes data/insurer.csv, data/hospital.csv
    python experiments/make_demo_data.py --source PATH        # first copy PATH to data/insurance.csv

Deterministic (seeded numpy generator; demo data, not cryptography).  Each of the 1338 source
rows gets a synthetic id P000001..P001338 in random order; 1200 rows go to both owners, 69 only
to the insurer and 69 only to the hospital, so the secure inner join finds exactly 1200.
The insurer holds age, sex, children, region and charges; the hospital holds bmi and smoker.
Categorical columns are one-hot encoded in full (11 features in all, as in the book chapter);
drop one dummy per category before regression if a unique Lasso optimum is wanted.
"""

import argparse
import hashlib
import os
import shutil

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'data')
SHA256 = '388eff679557d08ac19f463d025de5e0b4adc482537c8456d19934d78621fd47'
SHARED, ONLY_EACH, SEED = 1200, 69, 20240601
INSURER = ['age', 'sex', 'children', 'region', 'charges']
HOSPITAL = ['bmi', 'smoker']


def owner_table(df, ids, columns, rng):
    """The owner's rows (own random order), its columns with categories one-hot encoded as 0/1."""
    t = df.loc[ids, columns]
    t = pd.get_dummies(t, columns=[c for c in columns if not pd.api.types.is_numeric_dtype(t[c])], dtype=int)
    t.insert(0, 'patient_id', t.index)
    return t.iloc[rng.permutation(len(t))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--source', help='copy this insurance.csv to data/ first (checked by sha256)')
    args = ap.parse_args()
    path = os.path.join(DATA, 'insurance.csv')
    if args.source:
        shutil.copyfile(args.source, path)
    with open(path, 'rb') as f:
        if hashlib.sha256(f.read()).hexdigest() != SHA256:
            raise SystemExit(f'{path} is not the expected Medical Costs file (sha256 {SHA256})')

    df = pd.read_csv(path)
    rng = np.random.default_rng(SEED)
    df.index = [f'P{i:06d}' for i in rng.permutation(len(df)) + 1]
    assert SHARED + 2 * ONLY_EACH == len(df)
    order = rng.permutation(df.index)
    both, only_ins, only_hosp = np.split(order, [SHARED, SHARED + ONLY_EACH])
    insurer = owner_table(df, np.concatenate([both, only_ins]), INSURER, rng)
    hospital = owner_table(df, np.concatenate([both, only_hosp]), HOSPITAL, rng)
    for name, table in [('insurer', insurer), ('hospital', hospital)]:
        table.to_csv(os.path.join(DATA, f'{name}.csv'), index=False)
        print(f'data/{name}.csv: {len(table)} rows, columns {list(table.columns)}')
    print(f'{len(set(insurer.patient_id) & set(hospital.patient_id))} patients in both')


if __name__ == '__main__':
    main()
