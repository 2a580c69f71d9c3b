"""Cluster tier: multi-node Ray clusters started locally (marked ``cluster``; run by ``make test``)."""
