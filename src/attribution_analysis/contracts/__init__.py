"""Pydantic contracts: input tables, step parameters and answers, output files.

``schemas/`` at the repository root holds the JSON Schema of each (the list is derived in
:func:`attribution_analysis.schemas.schema_models` from the step table and the workspace
layout); a test fails when they drift.
"""
