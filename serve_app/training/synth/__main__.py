"""``python -m serve_app.training.synth``: write a synthetic training set (see ``dataset.main``)."""

from serve_app.training.synth.dataset import main

raise SystemExit(main())
