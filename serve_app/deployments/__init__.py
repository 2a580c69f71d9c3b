"""Ray Serve deployments: one per module, each a thin shell over ``serve_app.core``."""
