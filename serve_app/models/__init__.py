"""Loading and inference of each model (sentence-transformers, detectron2), used by the deployments and
by training alike (no Ray)."""
