"""serve_app: several PyTorch models served side by side as one Ray Serve application."""

from __future__ import annotations

__version__ = "0.1.0"
