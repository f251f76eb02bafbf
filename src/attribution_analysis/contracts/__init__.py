"""Pydantic contracts: input tables, step parameters and results, output files.

``schemas/`` at the repository root holds the JSON Schema of each model listed in
:data:`attribution_analysis.contracts.registry.SCHEMA_MODELS`; a test fails when they drift.
"""
