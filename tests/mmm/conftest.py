"""The MMM tests' fitted workspaces (``fitted``, ``validated``) live in
:mod:`tests.fitted_mmm`, registered for the whole suite by ``tests/conftest.py``."""

from tests.fitted_mmm import FITTED, SMALL  # noqa: F401  (imported by test_fit)
