"""Secure estimators with scikit-learn's names."""
