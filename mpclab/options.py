"""The options of mpclab's programs, declared once, as typed dataclasses.

Every option is a field of one group (data, precision and security, split, model, revealing,
running).  Its metadata says how it is spelt on the command line and whether every party must
run with the same value (*agreed*: compared in the agreement round and part of the analysis
fingerprint) or it is this party's own (its file, where it writes, how long it waits).

An `Options` object is built in one way whatever the source: the command line
(`from_command_line`), a study file plus the command line (``--study``), or Python keyword
arguments (`from_values`).  It is validated once, here; below the program layer nothing sees
an argparse namespace.  Following ``frac_bits``: ``--frac-bits`` → `SecurityOptions.frac_bits`
→ `Options.input_format()` → the library.

Every option name is a long, lower-case option that is no prefix of one of MPyC's own (MPyC
parses the whole command line too, and accepts abbreviations of its options).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mpclab import __version__

__all__ = ['OptionError', 'Options', 'PROGRAMS', 'from_command_line', 'from_values',
           'command_line_parser', 'flag', 'fingerprint', 'option_specs']

REQUIRED = dataclasses.MISSING


class OptionError(ValueError):
    """An option value is unusable; `option` is its name, `message` says why (with the flag)."""

    def __init__(self, option: str | None, message: str):
        super().__init__(message)
        self.option = option


def option(default: Any = REQUIRED, help: str = '', *, agreed: bool = True, metavar: str | None = None,
           choices: tuple | None = None, path: bool = False, kind: str | None = None,
           each_party: bool = False) -> Any:
    """A dataclass field describing one option.

    kind: 'int', 'float', 'str', 'flag' (bool, no value), 'strs' (one or more strings),
    'ints' (zero or more ints), 'floats' (one or more floats) or 'int_bits' (a whole number or
    'auto'); by default from the default.
    """
    if kind is None:
        kind = {bool: 'flag', int: 'int', float: 'float', tuple: 'strs'}.get(type(default), 'str')
    meta = {'help': help, 'agreed': agreed, 'metavar': metavar, 'choices': choices,
            'path': path or each_party, 'kind': kind, 'each_party': each_party}
    if default is REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def flag(name: str) -> str:
    """The command-line spelling of an option name."""
    return '--' + name.replace('_', '-')


def _check(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise OptionError(name, f'{flag(name)}: {message}')


# -- the groups ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DataOptions:
    """Each owner's table and how they are read and matched."""

    left: str | None = option(None, "party 0's table (read by party 0 only)", agreed=False,
                              metavar='CSV', path=True, kind='str')
    right: str | None = option(None, "party 1's table (read by party 1 only)", agreed=False,
                               metavar='CSV', path=True, kind='str')
    owners: int = option(2, 'number K of owners: parties 0..K-1 each hold a table (--data, or '
                         'with two owners --left/--right), party K helps by default (default 2)',
                         metavar='K')
    data: str | None = option(None, "this owner's own table (read by the owner only; with -M put "
                              "{party} in the path, e.g. owner_{party}.csv)", agreed=False,
                              metavar='CSV', path=True, kind='str')
    id: str = option(REQUIRED, 'identifier column, in every table', metavar='COLUMN')
    id_normalize: str = option('none', 'how both owners normalise identifiers before matching: '
                               'none, casefold (ignore case) or strip-zeros (drop leading zeros)',
                               choices=('none', 'casefold', 'strip-zeros'))
    scale: str = option('none', 'min-max scale every column to [0, 1], locally by each owner',
                        choices=('none', 'minmax'))
    drop_columns: tuple[str, ...] = option((), 'columns an owner leaves out (each owner drops '
                                           'those it has; a name no table has is an error)',
                                           metavar='COLUMN')
    sep: str | None = option(None, "this party's CSV field separator (default: detected from "
                             "the header among , ; tab |)", agreed=False, kind='str')
    encoding: str = option('utf-8', "this party's file encoding (default utf-8)", agreed=False)
    decimal: str = option('.', "this party's decimal mark, . or , (default .)", agreed=False,
                          choices=('.', ','))

    def __post_init__(self):
        _check(bool(self.id and self.id.strip()), 'id', 'the identifier column needs a name')
        _check(self.owners >= 2, 'owners', f'{self.owners}: a join needs 2 or more owners')
        _check(self.owners == 2 or not (self.left or self.right), 'left' if self.left else 'right',
               f'is the two-owner spelling: with --owners {self.owners} every owner passes --data')
        _check(not (self.data and (self.left or self.right)), 'data',
               'give either --data (each owner its own table) or --left/--right, not both')
        _check(self.sep is None or len(self.sep) == 1 or self.sep == r'\t', 'sep',
               f'a separator is one character, not {self.sep!r}')
        _check(self.sep is None or self.decimal != self.sep, 'decimal',
               'the decimal mark cannot also be the separator')
        _check(self.id not in self.drop_columns, 'drop_columns',
               f'the identifier column {self.id!r} cannot be dropped')


@dataclass(frozen=True, kw_only=True)
class SecurityOptions:
    """Precision of the data and security parameters (all agreed)."""

    frac_bits: int = option(16, 'fractional bits of the input encoding (default 16)', metavar='F')
    int_bits: int | str = option('auto', 'inputs must satisfy |x| < 2**I; auto (the default): each '
                                 'owner proposes the bits its own columns need and the largest is '
                                 'taken, which tells every party that power of two (1 with '
                                 '--scale minmax, whose values lie in [0, 1]); a fixed I reveals '
                                 'nothing.  Fewer bits make the join cheaper', metavar='I',
                                 kind='int_bits')
    fxp_bits: int = option(64, 'bit length L of the secure fixed-point type SecFxp(L, L/2) '
                           '(default 64)', metavar='L')
    key_bits: int = option(2048, 'Paillier modulus size (default 2048)', choices=(2048, 3072, 4096))
    stat_sec: int = option(40, 'statistical security of the join\'s masks, in bits per value '
                           '(default 40)', metavar='S')
    join_helper: int | None = option(None, 'index of the helper party (default: the party after '
                                     'the owners, 2 with two owners)', metavar='I', kind='int')

    def __post_init__(self):
        _check(self.fxp_bits % 2 == 0 and 32 <= self.fxp_bits <= 256, 'fxp_bits',
               f'{self.fxp_bits} must be even and between 32 and 256')
        half = self.fxp_bits // 2
        _check(0 <= self.frac_bits <= half, 'frac_bits',
               f'{self.frac_bits} must lie in [0, {half}], the fractional bits of '
               f'SecFxp({self.fxp_bits})')
        if self.int_bits != 'auto':
            _check(self.int_bits >= 0, 'int_bits', 'must be non-negative')
            _check(self.int_bits + half + 1 <= self.fxp_bits, 'int_bits',
                   f'{self.int_bits} leaves no room in SecFxp({self.fxp_bits}, {half}): lower it '
                   f'or raise --fxp-bits')
        _check(self.stat_sec >= 20, 'stat_sec', f'{self.stat_sec} bits give no meaningful '
               'statistical hiding (the default is 40 per value)')


@dataclass(frozen=True, kw_only=True)
class SplitOptions:
    """Which column is predicted and which joined rows are kept for testing."""

    target: str = option(REQUIRED, 'column to predict (either owner may hold it)', metavar='COLUMN')
    test_fraction: float = option(0.1, 'fraction of joined rows kept secret for testing; 0 trains '
                                  'and reports on all (default 0.1)', metavar='F')
    split: str = option('secret', "secret: the test rows are a random block of the helper's "
                        'secret row order (reveals only the sizes); seeded: the people whose '
                        'hash(--seed, id) falls below the fraction, so that a plaintext twin can '
                        'use the same split, which tells each owner how many of its own test '
                        'candidates are in the intersection (default secret)',
                        choices=('secret', 'seeded'))
    seed: int | None = option(None, 'the public seed of --split seeded', metavar='S', kind='int')
    min_rows: int = option(20, 'stop before training if the intersection has fewer rows '
                           '(default 20)', metavar='N')
    min_test_rows: int = option(10, 'stop before training if the test set has fewer rows '
                                '(default 10; unused with --test-fraction 0)', metavar='N')
    def __post_init__(self):
        _check(0 <= self.test_fraction < 1, 'test_fraction', f'{self.test_fraction:g} must lie in [0, 1)')
        _check(self.split == 'seeded' or self.seed is None, 'seed',
               'a seed only makes sense with --split seeded')
        _check(self.split != 'seeded' or self.seed is not None, 'split',
               'seeded needs --seed S')
        _check(self.split != 'seeded' or self.test_fraction > 0, 'split',
               'seeded needs a --test-fraction above 0')
        _check(self.min_rows >= 1, 'min_rows', 'must be at least 1')
        _check(self.min_test_rows >= 1, 'min_test_rows', 'must be at least 1')


@dataclass(frozen=True, kw_only=True)
class LassoOptions:
    """Lasso regression (scikit-learn's objective and names); --cv chooses alpha in MPC.

    The base of the other linear models' groups (`ElasticNetOptions`, `RidgeOptions`), which
    share its fields and checks.
    """

    alpha: float = option(0.001, 'L1 penalty, as in scikit-learn (default 0.001)')
    tol: float = option(1e-4, 'relative step size at which to stop (default 1e-4)')
    max_iter: int = option(1000, 'iteration limit (default 1000)')
    fixed_iterations: int | None = option(None, 'run exactly K iterations; reveals nothing about '
                                          'convergence', metavar='K', kind='int')
    cv: int | None = option(None, 'choose alpha by K-fold cross-validation in MPC on the training '
                            'rows (K blocks of the secret row order) among --alphas or --n-alphas, '
                            'then fit on all training rows; reveals alpha_ and the mean validation '
                            'MSE of every candidate (--alpha is unused)', metavar='K', kind='int')
    alphas: tuple[float, ...] = option((), 'the candidate alphas of --cv', metavar='A', kind='floats')
    n_alphas: int | None = option(None, 'with --cv: N candidates on a geometric path from alpha_max '
                                  'down to alpha_max/1000, as scikit-learn\'s LassoCV (reveals '
                                  'alpha_max rounded up to a power of 2**(1/16))', metavar='N',
                                  kind='int')

    def __post_init__(self):
        _check(self.alpha >= 0, 'alpha', 'must be non-negative')
        _check(self.tol > 0, 'tol', 'must be positive')
        _check(self.max_iter >= 1, 'max_iter', 'must be at least 1')
        _check(self.fixed_iterations is None or self.fixed_iterations >= 1, 'fixed_iterations',
               'must be at least 1')
        _check(self.cv is None or self.cv >= 2, 'cv', 'needs at least 2 folds')
        _check(self.cv is None or bool(self.alphas) != (self.n_alphas is not None), 'cv',
               'give the candidates: either --alphas A1 A2 ... or --n-alphas N')
        _check(self.cv is not None or not self.alphas and self.n_alphas is None,
               'alphas' if self.alphas else 'n_alphas', 'only makes sense with --cv K')
        _check(all(a >= 0 for a in self.alphas), 'alphas', 'must be non-negative')
        _check(self.n_alphas is None or self.n_alphas >= 1, 'n_alphas', 'must be at least 1')


@dataclass(frozen=True, kw_only=True)
class ElasticNetOptions(LassoOptions):
    """Elastic net regression (scikit-learn's objective and names); --cv chooses alpha."""

    alpha: float = option(0.001, 'penalty, as in scikit-learn\'s ElasticNet: alpha·l1_ratio·||w||₁ '
                          '+ 0.5·alpha·(1 − l1_ratio)·||w||² (default 0.001)')
    l1_ratio: float = option(0.5, 'the L1 share of the penalty, in [0, 1]; 1 is the Lasso '
                             '(default 0.5)', metavar='R')

    def __post_init__(self):
        super().__post_init__()
        _check(0 <= self.l1_ratio <= 1, 'l1_ratio', f'{self.l1_ratio:g} must lie in [0, 1]')
        _check(self.n_alphas is None or self.l1_ratio > 0, 'n_alphas',
               'a path from alpha_max needs --l1-ratio above 0: give --alphas')


@dataclass(frozen=True, kw_only=True)
class RidgeOptions(LassoOptions):
    """Ridge regression (scikit-learn's objective and names); --cv chooses alpha."""

    # ridge's penalty has no alpha_max (every alpha > 0 leaves coefficients), so no path
    NOT_OPTIONS: ClassVar[tuple[str, ...]] = ('n_alphas',)

    alpha: float = option(1.0, "L2 penalty, as in scikit-learn's Ridge: ||y − Xw − b||² + "
                          'alpha·||w||², not divided by the number of rows (default 1.0)')

    def __post_init__(self):
        super().__post_init__()
        _check(self.n_alphas is None, 'n_alphas', 'ridge has no path from alpha_max: give --alphas')


@dataclass(frozen=True, kw_only=True)
class LogisticOptions:
    """L2-regularised logistic regression (scikit-learn's objective; C is --reg-c)."""

    # scikit-learn's C; not --c, which MPyC would read as --config
    reg_c: float = option(1.0, "inverse L2 strength, scikit-learn's C (default 1.0)", metavar='C')
    max_iter: int = option(25, 'maximum Newton steps (default 25)')
    tol: float = option(1e-4, 'stop when every gradient entry is below this (default 1e-4)')
    fixed_iterations: int | None = option(None, 'run exactly K Newton steps; reveals nothing '
                                          'about convergence', metavar='K', kind='int')
    auc: str = option('auto', 'ROC AUC of the test rows: auto (the default: exact up to 128 test '
                      'rows, else histogram), histogram (a secret histogram of the scores by '
                      'class, time linear in the rows, memory bounded; exact at the resolution of '
                      '2**-14 on the sigmoid of the score), exact (pairwise comparisons up to 128 '
                      'rows, else a secure sort, about n log^2 n comparisons and memory growing '
                      'alike: refused up front if it would not fit), or none',
                      choices=('auto', 'histogram', 'exact', 'none'))
    cv: int | None = option(None, 'choose C by K-fold cross-validation on the training rows, '
                            'in MPC (--reg-c is then unused); reveals the chosen C and the mean '
                            'held-out accuracy of every candidate', metavar='K', kind='int')
    cs: tuple[float, ...] = option((), 'the candidate Cs for --cv (default: scikit-learn\'s ten, '
                                   'logspace(-4, 4, 10))', metavar='C', kind='floats')

    def __post_init__(self):
        _check(self.reg_c > 0, 'reg_c', 'must be positive')
        _check(self.tol > 0, 'tol', 'must be positive')
        _check(self.max_iter >= 1, 'max_iter', 'must be at least 1')
        _check(self.fixed_iterations is None or self.fixed_iterations >= 1, 'fixed_iterations',
               'must be at least 1')
        _check(self.cv is None or self.cv >= 2, 'cv', 'must be at least 2 folds')
        _check(not self.cs or self.cv is not None, 'cs', 'candidates need --cv K')
        _check(all(c > 0 for c in self.cs), 'cs', 'every C must be positive')
        _check(len(set(self.cs)) == len(self.cs), 'cs', 'a candidate twice')

    def candidates(self) -> tuple[float, ...]:
        """The Cs that --cv tries: --cs, or scikit-learn's default logspace(-4, 4, 10)."""
        import numpy as np   # only here: the options load without numpy otherwise
        return self.cs or tuple(map(float, np.logspace(-4, 4, 10)))


@dataclass(frozen=True, kw_only=True)
class ModelOutputOptions:
    """Who learns the model, in which units, and where each party keeps it."""

    model_to: tuple[int, ...] | None = option(None, 'parties that learn the model (default all; '
                                              'give none to keep it secret)', metavar='I',
                                              kind='ints')
    secret_model: bool = option(False, 'never reveal the model: it is used for the test metrics '
                                'in MPC, and each party keeps only its own shares (--model-out)')
    model_units: str = option('original', "the coefficients' units with --scale minmax: original "
                              '(each owner\'s own units, converted in MPC so that nobody learns an '
                              'owner\'s minimum or range; metrics in the target\'s units too) or '
                              'scaled (as trained)', choices=('original', 'scaled'))
    model_out: str | None = option(None, 'each party that receives the model (or, for a secret '
                                   'model, its shares) writes it here as JSON', agreed=False,
                                   metavar='PATH', each_party=True, kind='str')


@dataclass(frozen=True, kw_only=True)
class PredictOptions:
    """Applying a trained model to new owner tables."""

    model: str = option(REQUIRED, "this party's model file (from --model-out)", agreed=False,
                        metavar='PATH', path=True)
    predictions_to: int = option(0, 'the owner that learns the predictions, for the people in '
                                 'the intersection (default 0)', metavar='I')
    save_predictions: str | None = option(None, 'where that owner writes them, with its own '
                                          'identifiers', agreed=False, metavar='CSV', path=True,
                                          kind='str')


@dataclass(frozen=True, kw_only=True)
class DescribeOptions:
    """Descriptive statistics of the joined table (aggregates only)."""

    histogram: tuple[str, ...] = option((), 'columns to make histograms of', metavar='COLUMN')
    bins: int = option(10, 'bins per histogram (default 10), equal width between the column\'s '
                       'secure minimum and maximum', metavar='K')
    min_count: int = option(5, 'histogram cells with fewer people are suppressed in MPC before '
                            'anything is opened (default 5)', metavar='N')
    plot: str | None = option(None, 'this party writes a PNG of the correlation matrix and the '
                              'histograms here', agreed=False, metavar='PNG', each_party=True, kind='str')

    def __post_init__(self):
        _check(self.bins >= 1, 'bins', 'must be at least 1')
        _check(self.min_count >= 1, 'min_count', 'must be at least 1')
        _check(len(set(self.histogram)) == len(self.histogram), 'histogram', 'a column twice')


@dataclass(frozen=True, kw_only=True)
class RevealOptions:
    """Opening the joined table (testing and debugging only: it discloses the joined records)."""

    reveal_to: int | None = option(None, 'open the joined table to party I', metavar='I', kind='int')
    save_joined: str | None = option(None, 'where party I writes the opened table', agreed=False,
                                     metavar='CSV', path=True, kind='str')

    def __post_init__(self):
        _check((self.reveal_to is None) == (self.save_joined is None), 'reveal_to',
               '--reveal-to and --save-joined go together')


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How this party runs: its own waiting, output and approval (never agreed)."""

    timeout: float = option(120.0, 'a peer silent this long (no message, no keep-alive) stops '
                            'every party (default 120)', agreed=False, metavar='SECONDS')
    connect_timeout: float = option(60.0, 'every party must be connected within this time '
                                    '(default 60)', agreed=False, metavar='SECONDS')
    json: str | None = option(None, "write this party's summary here", agreed=False,
                              metavar='PATH', each_party=True, kind='str')
    progress: bool = option(False, 'show progress on stderr even when it is not a terminal',
                            agreed=False)
    verbose: bool = option(False, "show MPyC's own log lines (on stderr)", agreed=False)
    approved: str | None = option(None, 'the analysis fingerprint this party approved (see '
                                  '`mpclab approve`): stop every party if the run differs',
                                  agreed=False, metavar='FINGERPRINT', kind='str')
    dask: str | None = option(None, "send this party's bulk crypto (hashing, encryption, masks, "
                              'decryption) to its own dask.distributed cluster at this scheduler '
                              'address: it receives this party\'s secrets, so only a cluster on '
                              "this party's own hosts (default: this machine's cores, up to -W)",
                              agreed=False, metavar='ADDRESS', kind='str')
    allow_plaintext_network: bool = option(False, 'allow unencrypted connections to other hosts '
                                           '(without --ssl every byte crosses the network in '
                                           'the clear)', agreed=False)

    def __post_init__(self):
        _check(self.timeout > 0, 'timeout', 'must be positive')
        _check(self.connect_timeout > 0, 'connect_timeout', 'must be positive')


# -- programs --------------------------------------------------------------------------------
#: program name -> ((group attribute, group class), ...), in the order options are listed
PROGRAMS: dict[str, tuple[tuple[str, type], ...]] = {
    'join': (('data', DataOptions), ('security', SecurityOptions), ('reveal', RevealOptions),
             ('run', RunOptions)),
    'lasso': (('data', DataOptions), ('security', SecurityOptions), ('split', SplitOptions),
              ('model', LassoOptions), ('output', ModelOutputOptions), ('run', RunOptions)),
    'ridge': (('data', DataOptions), ('security', SecurityOptions), ('split', SplitOptions),
              ('model', RidgeOptions), ('output', ModelOutputOptions), ('run', RunOptions)),
    'elasticnet': (('data', DataOptions), ('security', SecurityOptions), ('split', SplitOptions),
                   ('model', ElasticNetOptions), ('output', ModelOutputOptions), ('run', RunOptions)),
    'logistic': (('data', DataOptions), ('security', SecurityOptions), ('split', SplitOptions),
                 ('model', LogisticOptions), ('output', ModelOutputOptions), ('run', RunOptions)),
    'predict': (('data', DataOptions), ('security', SecurityOptions), ('predict', PredictOptions),
                ('run', RunOptions)),
    'describe': (('data', DataOptions), ('security', SecurityOptions),
                 ('describe', DescribeOptions), ('run', RunOptions)),
}

#: options that are not part of any group: where the study file comes from
STUDY_KEYS = ('program', 'parties')


def option_specs(program: str) -> dict[str, tuple[str, dataclasses.Field]]:
    """name -> (group attribute, field) for every option of a program, in order."""
    try:
        groups = PROGRAMS[program]
    except KeyError:
        raise OptionError('program', f'unknown program {program!r}; one of {", ".join(PROGRAMS)}') from None
    return {f.name: (attr, f) for attr, cls in groups for f in option_fields(cls)}


def option_fields(cls) -> list[dataclasses.Field]:
    """A group's fields that are options of its programs (not those it sets aside)."""
    return [f for f in dataclasses.fields(cls) if f.name not in getattr(cls, 'NOT_OPTIONS', ())]


def _int_bits(value) -> int | str:
    if value == 'auto':
        return 'auto'
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(value)
    return int(value)


def _convert(name: str, f: dataclasses.Field, value: Any) -> Any:
    """A value from a study file or from Python in the field's type (command-line values
    arrive converted by argparse)."""
    kind = f.metadata['kind']
    if value is None:
        return None
    try:
        if kind == 'flag':
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind == 'int':
            if isinstance(value, bool) or not float(value).is_integer():
                raise TypeError
            return int(value)
        if kind == 'float':
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind == 'str':
            if not isinstance(value, str):
                value = str(value)   # a path object
            return value
        if kind == 'strs':
            if isinstance(value, str):
                return (value,)
            return tuple(str(v) for v in value)
        if kind == 'ints':
            if isinstance(value, (int, str)):
                value = [value]
            return tuple(int(v) for v in value)
        if kind == 'floats':
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                value = [value]
            if any(isinstance(v, bool) for v in value):
                raise TypeError
            return tuple(float(v) for v in value)
        if kind == 'int_bits':
            return _int_bits(value)
    except (TypeError, ValueError):
        pass
    raise OptionError(name, f'{flag(name)}: {value!r} is not a valid {kind} value')


# -- the option set --------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """The validated options of one party's run of one program.

    Attributes are the groups: ``data``, ``security``, then ``split`` and ``model`` (model
    programs) or ``reveal`` (the join), and ``run``.  ``parties`` is the number of parties a
    study file asks for (None: any).
    """

    program: str
    groups: dict
    parties: int | None = None

    def __getattr__(self, name):
        groups = self.__dict__.get('groups', {})
        if name in groups:
            return groups[name]
        raise AttributeError(name)

    def __contains__(self, group: str) -> bool:
        return group in self.groups

    def values(self) -> dict[str, Any]:
        """Every option's value, by name, in declaration order."""
        return {name: getattr(self.groups[attr], name)
                for name, (attr, _) in option_specs(self.program).items()}

    def agreed(self) -> dict[str, Any]:
        """The options every party must hold equal, in declaration order (JSON values)."""
        out = {name: _jsonable(getattr(self.groups[attr], name))
               for name, (attr, f) in option_specs(self.program).items() if f.metadata['agreed']}
        if self.parties is not None:
            out['parties'] = self.parties
        return out

    def fingerprint(self) -> str:
        return fingerprint(self.program, self.agreed())

    def for_party(self, pid: int, shared_command_line: bool = False) -> 'Options':
        """The options with ``{party}`` in every path replaced by this party's number.

        With a `shared_command_line` (MPyC's ``-M``: every local party got the same options), a
        file that each party writes (``--json``, ``--model-out``, ``--plot``) but whose path has
        no ``{party}`` is written by party 0 alone, rather than by all of them at once.  A secret
        model cannot be kept that way (every party's shares are needed): that is an OptionError.
        """
        groups = {}
        for attr, group in self.groups.items():
            changes = {}
            for f in dataclasses.fields(group):
                value = getattr(group, f.name)
                if not f.metadata['path'] or not value:
                    continue
                if f.metadata['each_party'] and shared_command_line and '{party}' not in value:
                    if attr == 'output' and f.name == 'model_out' and group.secret_model:
                        raise OptionError('model_out', f'--model-out {value}: with -M every party '
                                          f'keeps its own shares of the secret model: put {{party}} '
                                          f'in the path (e.g. model_{{party}}.json)')
                    changes[f.name] = value if pid == 0 else None
                else:
                    changes[f.name] = value.replace('{party}', str(pid))
            groups[attr] = dataclasses.replace(group, **changes) if changes else group
        return dataclasses.replace(self, groups=groups)

    def check_parties(self, n_parties: int) -> None:
        """Checks that need the number of parties (raises OptionError)."""
        if self.parties is not None and self.parties != n_parties:
            raise OptionError('parties', f'the study is for {self.parties} parties, this run has '
                                         f'{n_parties}')
        owners = self.data.owners
        if n_parties == 1:
            _check(owners == 2 and not self.data.data, 'owners' if owners != 2 else 'data',
                   'with one party, which plays every role, pass the two tables as --left and '
                   '--right')
        else:   # too few parties for the owners and a helper: `mpclab.join.Roles` says so
            helper = self.security.join_helper
            if helper is not None:
                _check(owners <= helper < n_parties, 'join_helper',
                       f'{helper} must be between {owners} and {n_parties - 1} with {owners} '
                       f'owners and {n_parties} parties')
        for i in (self.output.model_to or ()) if 'output' in self else ():
            _check(0 <= i < n_parties, 'model_to', f'{i}: no such party')
        if 'predict' in self:
            to = self.predict.predictions_to
            _check(0 <= to < owners or n_parties == 1, 'predictions_to',
                   f'{to}: the predictions go to an owner, one of the parties 0..{owners - 1}')
        if 'reveal' in self and self.reveal.reveal_to is not None:
            _check(0 <= self.reveal.reveal_to < n_parties, 'reveal_to',
                   f'{self.reveal.reveal_to}: no such party')

    def input_format(self, int_bits: int | None = None):
        """The fixed-point input format (`mpclab.fixedpoint.FixedPointFormat`), with the agreed
        integer bits or, for ``--int-bits auto``, the given ones (default: the most the secure
        type holds, for reading a table before the bits are agreed)."""
        from mpclab.fixedpoint import FixedPointFormat
        s = self.security
        if int_bits is None:
            int_bits = s.int_bits if s.int_bits != 'auto' else s.fxp_bits - s.fxp_bits // 2 - 1
        return FixedPointFormat(frac_bits=s.frac_bits, int_bits=int_bits, secure_bits=s.fxp_bits)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def fingerprint(program: str, agreed: dict) -> str:
    """SHA-256 over the program, mpclab's version and the canonical agreed options."""
    canonical = json.dumps({'program': program, 'mpclab': __version__, 'options': agreed},
                           sort_keys=True, separators=(',', ':'), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _cross_checks(program: str, groups: dict) -> dict:
    """Defaults that depend on other options, and checks across groups."""
    if 'output' in groups:
        out = groups['output']
        _check(not (out.secret_model and out.model_to), 'secret_model',
               'a secret model cannot go to --model-to parties')
    return groups


def from_values(program: str, values: dict[str, Any], origin: dict[str, str] | None = None,
                parties: int | None = None) -> Options:
    """Validated options from option values by name (unknown names are an error).

    `origin` maps names to where a value came from, for messages (e.g. 'study.toml').
    """
    specs = option_specs(program)
    per_group: dict[str, dict] = {attr: {} for attr, _ in PROGRAMS[program]}
    for name, value in values.items():
        if name not in specs:
            where = f'{origin[name]}: ' if origin and name in origin else ''
            raise OptionError(name, f'{where}{program} has no option {flag(name)}')
        attr, f = specs[name]
        per_group[attr][name] = _convert(name, f, value)
    groups = {}
    for attr, cls in PROGRAMS[program]:
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is REQUIRED and f.name not in per_group[attr]]
        if missing:
            raise OptionError(missing[0], f'{program} needs {flag(missing[0])}')
        groups[attr] = cls(**per_group[attr])
    return Options(program, _cross_checks(program, groups), parties)


# -- the command line ------------------------------------------------------------------------
def command_line_parser(program: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The argparse parser of a program's options; unset options stay absent from the result."""
    parser = argparse.ArgumentParser(
        prog=prog, allow_abbrev=False, argument_default=argparse.SUPPRESS,
        description=PROGRAM_DESCRIPTIONS.get(program),
        epilog="MPyC's own options (-M, -P, -I, --ssl, -K, ...): python -m mpyc -H.  Options that "
               'must be equal at every party may come from a study file (--study).')
    parser.add_argument('--study', metavar='TOML', help='read the agreed options from this study '
                        'file; add only this party\'s own options on the command line')
    titles = {'data': 'data (each party passes only its own table)',
              'security': 'precision and security (must be equal at every party)',
              'split': 'target and test split (must be equal at every party)',
              'model': 'model (must be equal at every party)',
              'reveal': 'revealing the joined table (testing and debugging only)',
              'describe': 'statistics (must be equal at every party)',
              'output': 'the model (must be equal at every party, but for --model-out)',
              'predict': 'the model and who learns the predictions',
              'run': 'running (this party only)'}
    for attr, cls in PROGRAMS[program]:
        group = parser.add_argument_group(titles[attr])
        for f in option_fields(cls):
            m = f.metadata
            kw: dict[str, Any] = {'help': m['help'], 'dest': f.name}
            if m['metavar']:
                kw['metavar'] = m['metavar']
            if m['choices']:
                kw['choices'] = m['choices']
            if m['kind'] == 'flag':
                kw['action'] = 'store_true'
            elif m['kind'] == 'strs':
                kw['nargs'] = '+'
            elif m['kind'] == 'ints':
                kw['nargs'] = '*'
                kw['type'] = int
            elif m['kind'] == 'floats':
                kw['nargs'] = '+'
                kw['type'] = float
            else:
                kw['type'] = {'int': int, 'float': float, 'str': str, 'int_bits': _int_bits}[m['kind']]
            group.add_argument(flag(f.name), **kw)
    return parser


PROGRAM_DESCRIPTIONS = {
    'join': 'Secure inner join of two tables via a helper party (MPyC program).',
    'lasso': 'Secure inner join and Lasso regression (MPyC program).',
    'ridge': 'Secure inner join and ridge regression (MPyC program).',
    'elasticnet': 'Secure inner join and elastic net regression (MPyC program).',
    'logistic': 'Secure inner join and logistic regression (MPyC program).',
    'describe': 'Secure inner join and descriptive statistics of the joined table (MPyC program).',
    'predict': 'Secure predictions of a trained model for the people of new owner tables (MPyC program).',
}


def from_command_line(program: str, argv: list[str], prog: str | None = None
                      ) -> tuple[Options, list[str]]:
    """Options from a command line (and the study file it names), plus the arguments left for
    MPyC.  Raises OptionError for a bad value; argparse exits on a malformed command line."""
    parser = command_line_parser(program, prog)
    namespace, rest = parser.parse_known_args(argv)
    given = vars(namespace)
    study_path = given.pop('study', None)
    values, origin, parties = dict(given), {name: 'the command line' for name in given}, None
    if study_path:
        from mpclab.study import read_study
        study = read_study(study_path, program)
        parties = study.parties
        for name, value in study.values.items():
            if name in given:
                converted = _convert(name, option_specs(program)[name][1], value) \
                    if name in option_specs(program) else value
                if converted != given[name]:
                    raise OptionError(name, f'{flag(name)} is {given[name]!r} on the command line '
                                            f'but {value!r} in {study_path}')
            values[name] = value
            origin[name] = study_path
    return from_values(program, values, origin, parties), rest


def describe_difference(name: str) -> str:
    """How to name an agreed option in a message."""
    return 'the number of parties' if name in ('n_parties', 'parties') else flag(name)


def security_parameter(n_parties: int, threshold: int, bits: int = 40) -> int:
    """MPyC's -K such that every masked opening keeps `bits` of statistical hiding."""
    d = math.comb(n_parties, threshold)
    return bits + (d - 1).bit_length()
