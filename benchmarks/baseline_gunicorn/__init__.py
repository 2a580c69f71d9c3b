"""The classic baseline (FastAPI + gunicorn --preload); see README.md.

gunicorn loads the app as ``main:app`` from this directory (``chdir`` in gunicorn_conf.py); benchmarks
import ``benchmarks.baseline_gunicorn.launch``.
"""
