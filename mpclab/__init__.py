"""mpclab: privacy-preserving analytics on vertically partitioned data with MPyC.

Two data owners hold different columns about the same people.  mpclab joins their tables
securely (keyed hashing + Paillier via a helper party), leaves the joined table
secret-shared among all MPyC parties, and trains and evaluates models on it:
Lasso and logistic regression.  Only the agreed outputs are ever revealed.
"""

__version__ = '0.1.0'
