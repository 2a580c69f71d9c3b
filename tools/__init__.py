"""Operator and test tooling, not shipped in the runtime package: launching Serve from a config file,
KubeRay manifest generation."""
