"""gunicorn settings of the classic baseline: the recipe of the seed article, value by value.

Source: ../shared/seeds/gunicorn-preload-sentence-transformers.txt ("Deploying Large Deep Learning Models
in Production", FastAPI + gunicorn + uvicorn workers). Used as
``gunicorn -c benchmarks/baseline_gunicorn/gunicorn_conf.py main:app`` (see launch.py): the app module is
``main`` from this directory, not ``benchmarks.baseline_gunicorn.main``, as in the article.
"""

from __future__ import annotations

import os
from pathlib import Path

# Import main:app from this directory, whatever the working directory of the command (gunicorn chdirs
# here and puts it on sys.path before loading the app). Ours: the article ran from its app directory.
chdir = str(Path(__file__).resolve().parent)

# Article: "Preload the FastAPI application, so we can load the PyTorch model in the parent gunicorn
# process and share its memory with all the workers" (``--preload`` / ``preload_app = True``).
preload_app = True

# Article: "my tests showed 3 to work best for my use case" (its Dockerfile: MAX_WORKERS=3).
workers = 3

# Article: ``-k uvicorn.workers.UvicornWorker``. uvicorn 0.54.0 still ships that class but its module
# warns that it is deprecated in favour of the ``uvicorn-worker`` package; this is the same class there.
worker_class = "uvicorn_worker.UvicornWorker"

# Article: "limit the amount of requests a single worker will handle, so as to curtail the increase in
# memory usage of each worker process": max_requests = 50. After 50 requests a worker exits and the
# master forks a new one (from the preloaded master, so the model is not loaded again).
max_requests = 50
# Not in the article; gunicorn's default (0). Jitter would only spread the restarts of the workers.
max_requests_jitter = 0

# Article: "a timeout of 60 seconds instead of the default 30" (its Dockerfile: TIMEOUT=60).
timeout = 60

# Ours: where the benchmark points its client (launch.start_gunicorn sets BASELINE_BIND per run).
bind = os.environ.get("BASELINE_BIND", "127.0.0.1:8001")

# Ours: gunicorn >= 25.1 opens a control socket by default at $XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl (one shared path for every gunicorn of the user) and serves it from a thread in
# the master. The article's gunicorn had none; turned off so the baseline is the article's process tree
# and two runs never fight over the socket.
control_socket_disable = True
