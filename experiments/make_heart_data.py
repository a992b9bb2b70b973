"""Split the heart failure clinical records into a clinic's and a hospital's table.

    python experiments/make_heart_data.py                  # uses data/heart_failure_clinical_records.csv
    python experiments/make_heart_data.py --source PATH    # first copy PATH there (checked by sha256)

Writes data/heart_clinic.csv and data/heart_hospital.csv and documents them: a section is
appended to data/README.md if that file exists (replacing an earlier version of the section),
otherwise data/README_heart.md is written.  Deterministic (seeded numpy generator; demo data,
not cryptography).  Each of the 299 patients gets a synthetic id HF0001..HF0299 in random
order; 260 are in both tables, 20 only at the clinic and 19 only at the hospital, so the
secure inner join on patient_id finds exactly 260.
"""

import argparse
import hashlib
import os
import shutil

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'data')
SOURCE = 'heart_failure_clinical_records.csv'
SHA256 = '9c73cea7468ff5d517801ec050fe9993da5912fce4b56f296f8df3b38dd75912'
BOTH, ONLY_CLINIC, ONLY_HOSPITAL, SEED = 260, 20, 19, 20200203
CLINIC = ['age', 'sex', 'smoking', 'diabetes', 'high_blood_pressure', 'anaemia',
          'creatinine_phosphokinase', 'platelets']
HOSPITAL = ['ejection_fraction', 'serum_creatinine', 'serum_sodium', 'time', 'DEATH_EVENT']
BEGIN, END = '<!-- heart data: begin -->', '<!-- heart data: end -->'


def owner_table(df, ids, columns, rng):
    """The owner's rows in its own random order, with the synthetic id first."""
    t = df.loc[ids, columns]
    t.insert(0, 'patient_id', t.index)
    return t.iloc[rng.permutation(len(t))]


def split(df):
    rng = np.random.default_rng(SEED)
    df = df.copy()
    df.index = [f'HF{i:04d}' for i in rng.permutation(len(df)) + 1]
    if BOTH + ONLY_CLINIC + ONLY_HOSPITAL != len(df):
        raise SystemExit(f'expected {BOTH + ONLY_CLINIC + ONLY_HOSPITAL} rows, got {len(df)}')
    both, only_c, only_h = np.split(rng.permutation(df.index), [BOTH, BOTH + ONLY_CLINIC])
    clinic = owner_table(df, np.concatenate([both, only_c]), CLINIC, rng)
    hospital = owner_table(df, np.concatenate([both, only_h]), HOSPITAL, rng)
    return clinic, hospital


SECTION = f"""{BEGIN}
## Heart failure clinical records (`heart_failure_clinical_records.csv`, `heart_clinic.csv`, `heart_hospital.csv`)

`heart_failure_clinical_records.csv` holds the records of 299 heart failure patients treated
at the Faisalabad Institute of Cardiology and the Allied Hospital in Faisalabad (Pakistan),
April–December 2015: 12 clinical features and `DEATH_EVENT` (1 = died during the follow-up
period; 96 of 299). Please cite both:

- D. Chicco, G. Jurman, "Machine learning can predict survival of patients with heart failure
  from serum creatinine and ejection fraction alone", *BMC Medical Informatics and Decision
  Making* 20, 16 (2020), doi:10.1186/s12911-020-1023-5 (who prepared this CSV and donated it to
  the UCI Machine Learning Repository as "Heart failure clinical records");
- T. Ahmad, A. Munir, S. H. Bhatti, M. Aftab, M. A. Raza, "Survival analysis of heart failure
  patients: A case study", *PLoS ONE* 12(7): e0181001 (2017) (who first published the data).

Licence: Creative Commons Attribution 4.0 International (CC BY 4.0), as listed by UCI; the PLoS
ONE article and its supplement are open access under CC BY as well. The file is an unmodified
copy of `data/heart_failure_clinical_records_dataset.csv` in
<https://github.com/ecjuncal/stats-project-dataset> (commit `7f364d68`), renamed; 299 rows,
13 columns, LF line endings, sha256 `{SHA256}`.

`heart_clinic.csv` and `heart_hospital.csv` are two care parties' views of the same patients,
made from it by `python experiments/make_heart_data.py` (deterministic, seeded):

| file | rows | columns |
| --- | ---: | --- |
| `heart_clinic.csv` | {BOTH + ONLY_CLINIC} | `patient_id`, {', '.join(f'`{c}`' for c in CLINIC)} |
| `heart_hospital.csv` | {BOTH + ONLY_HOSPITAL} | `patient_id`, {', '.join(f'`{c}`' for c in HOSPITAL)} |

- `patient_id` is synthetic (`HF0001` to `HF0299`, one per source row, assigned at random).
- {BOTH} patients are in both tables, {ONLY_CLINIC} only in the clinic's and {ONLY_HOSPITAL} only in the
  hospital's, so an inner join on `patient_id` has {BOTH} rows. Each table is in its own random
  row order. Values are unchanged.
- The clinic holds demographics, risk factors and two blood values; the hospital holds the
  heart and kidney measurements, the follow-up time and the outcome `DEATH_EVENT` (the target).
- `time` (follow-up days) is strongly tied to the outcome; Chicco & Jurman also fit models
  without it. Scale the features (e.g. min-max to [0, 1] per column) before secure logistic
  regression: `platelets` reaches 850000.
{END}
"""


def document():
    readme = os.path.join(DATA, 'README.md')
    if os.path.exists(readme):
        with open(readme) as f:
            text = f.read()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            text = head + SECTION.rstrip('\n') + rest.split(END, 1)[1]
        else:
            text = text.rstrip('\n') + '\n\n' + SECTION
        path = readme
    else:
        text = '# Heart failure data\n\n' + SECTION
        path = os.path.join(DATA, 'README_heart.md')
    with open(path, 'w') as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--source', help=f'copy this file to data/{SOURCE} first (checked by sha256)')
    args = ap.parse_args()
    path = os.path.join(DATA, SOURCE)
    os.makedirs(DATA, exist_ok=True)
    if args.source:
        shutil.copyfile(args.source, path)
    with open(path, 'rb') as f:
        if hashlib.sha256(f.read()).hexdigest() != SHA256:
            raise SystemExit(f'{path} is not the expected heart failure file (sha256 {SHA256})')
    clinic, hospital = split(pd.read_csv(path))
    for name, table in [('heart_clinic', clinic), ('heart_hospital', hospital)]:
        table.to_csv(os.path.join(DATA, f'{name}.csv'), index=False)
        print(f'data/{name}.csv: {len(table)} rows, columns {list(table.columns)}')
    print(f'{len(set(clinic.patient_id) & set(hospital.patient_id))} patients in both; '
          f'documented in {os.path.relpath(document(), ROOT)}')


if __name__ == '__main__':
    main()
