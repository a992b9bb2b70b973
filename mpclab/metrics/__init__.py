"""Model quality metrics computed in MPC on secret data."""
