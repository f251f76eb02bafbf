"""The Bayesian MMM on PyMC-Marketing: build, sample fast, calibrate, diagnose, decompose."""
