"""Benchmarks: measured, never asserted in tests. Each script runs as a module from the repository root,

    .venv/bin/python -m benchmarks.embed_throughput --quick      # or: make bench-embed

so the repository root is on ``sys.path`` and ``tools.launch`` (deploy a Serve config file) and
``benchmarks._harness`` (the pieces the scripts share: the local service, the closed-loop load, the
report helpers) import without path tricks. ``baseline_gunicorn/`` is the gunicorn --preload baseline
that ``compare`` measures against.
"""
