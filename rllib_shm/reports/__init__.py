"""``rllib-shm report``: a study's (or an MLflow experiment's, or a set of runs') results as the
paper's Table-1 view, learning curves, the budget used, and the study's completeness.

Read from MLflow (the source of truth, local SQLite or a server) by ``collect.py``, grouped into
(task, variant) cells by ``grouping.py``, tabulated by ``table.py`` against the expected grid of
``grid.py``, drawn by ``curves.py``, written as markdown by ``markdown.py``; ``report.py`` checks the
inputs and ties them together. The paper's own numbers live in ``paper.py`` only. No Ray."""
