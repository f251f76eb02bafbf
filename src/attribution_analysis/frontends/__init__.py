"""The command-line front ends, generated from the step table (``steps.STEPS``).

``options`` turns a step's parameters model into command-line options (one per field);
``output`` is the JSON plumbing they share (one answer shape, errors worded per front end,
exit codes, a progress bar on stderr); ``commands`` builds one command per step, used by the
``attribution`` CLI (a subcommand per step) and by ``scripts/<step>.py``.
"""
