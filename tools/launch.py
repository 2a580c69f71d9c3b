"""Start Serve and deploy a Serve config file from Python, the way ``serve run CONFIG`` does.

Used by the app tests and the benchmarks so they exercise ``configs/serve.yaml`` itself. There is no
public "deploy this ServeDeploySchema" API in Python: ``deploy`` calls the private
``ray.serve._private.api.serve_start`` and ``client.deploy_apps``, exactly what Ray's own ``serve run``
CLI does. That is pin-sensitive: check it when upgrading Ray (requirements.lock pins it).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import yaml
from ray import serve
from ray.serve._private import api as serve_private_api
from ray.serve.config import gRPCOptions
from ray.serve.schema import ServeDeploySchema

from serve_app.core.errors import ConfigError
from serve_app.settings import DEPLOYMENT_CONFIGS, parse_settings
from tools.manifests.render import read_env_file
from tools.wait import wait_until

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "serve.yaml"
SERVE_ENV = DEFAULT_CONFIG.parent / "serve.env"  # Ray Serve's switches for the cluster's processes
APP_NAME = "serve_app"  # the application name in configs/serve.yaml (and serve_app.client.APP_NAME)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (tests and benchmarks must not clash with `make run`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(path: Path = SERVE_ENV) -> dict[str, str]:
    """``NAME=value`` lines of ``configs/serve.env``: what every Ray process of the app needs in its
    environment before it starts (``make run`` exports them; tests and benchmarks set them before
    starting Ray)."""
    return read_env_file(path.read_text())


def use_serve_env() -> None:
    """Put ``configs/serve.env`` into this process's environment where it is not set already (``make``
    exports it), before ``ray.init`` starts a local Ray: the Ray processes inherit it."""
    for name, value in serve_env().items():
        os.environ.setdefault(name, value)


def load_config(
    path: Path = DEFAULT_CONFIG,
    *,
    port: int | None = None,
    env_vars: dict[str, str] | None = None,
    user_configs: dict[str, dict[str, Any]] | None = None,
    app_args: dict[str, Any] | None = None,
) -> ServeDeploySchema:
    """Parse ``path`` with Serve's own schema and our user_config models.

    Optionally override the HTTP port, add environment variables to every application's runtime_env,
    update deployments' ``user_config`` (for example ``{"JobRunner": {"store_url": ...}}``) and the
    applications' ``args`` (for example ``{"models": {...}}``).
    """
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    if port is not None:
        raw.setdefault("http_options", {})["port"] = port
    overrides = user_configs or {}
    for app in raw.get("applications", []):
        if env_vars:
            app.setdefault("runtime_env", {}).setdefault("env_vars", {}).update(env_vars)
        if app_args:
            app["args"] = {**(app.get("args") or {}), **app_args}
        for dep in app.get("deployments", []):
            if dep["name"] in overrides:
                dep.setdefault("user_config", {}).update(overrides[dep["name"]])
    config = ServeDeploySchema.model_validate(raw)
    check_user_configs(config)
    return config


def check_user_configs(config: ServeDeploySchema) -> None:
    """Validate every deployment's ``user_config`` with the model in ``serve_app.settings``."""
    for app in config.applications:
        for dep in app.deployments:
            model = DEPLOYMENT_CONFIGS.get(dep.name)
            if model is None:
                raise ConfigError(
                    f"unknown deployment {dep.name!r} in {app.name}; known: {sorted(DEPLOYMENT_CONFIGS)}"
                )
            user_config = dep.user_config if isinstance(dep.user_config, dict) else None
            parse_settings(model, user_config, where=f"{dep.name} user_config")


def deploy(config: ServeDeploySchema, *, timeout_s: float = 300.0) -> None:
    """Start Serve with the config's HTTP options, deploy its apps and wait until all are RUNNING."""
    client = serve_private_api.serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
        grpc_options=gRPCOptions(**config.grpc_options.model_dump()),
    )
    client.deploy_apps(config, _blocking=False)
    wait_running([a.name for a in config.applications], timeout_s=timeout_s)


def wait_running(app_names: list[str], *, timeout_s: float) -> None:
    """Wait until every app is RUNNING; raise with Serve's message if one fails to deploy.

    UNHEALTHY may be transient (a replica crashed and is being replaced): it is waited out.
    """

    def states() -> dict[str, str]:
        apps = serve.status().applications
        found: dict[str, str] = {n: apps[n].status if n in apps else "NOT_STARTED" for n in app_names}
        failed = [n for n, s in found.items() if s == "DEPLOY_FAILED"]
        if failed:
            app = apps[failed[0]]
            reasons = [f"{name}: {d.message}" for name, d in app.deployments.items() if d.message]
            raise RuntimeError(f"deploy failed: {app.message} {' '.join(reasons)}".strip())
        return found

    def describe() -> str:
        apps = serve.status().applications
        messages = {n: apps[n].message for n in app_names if n in apps and apps[n].message}
        return f"apps not RUNNING: {states()} {messages}"

    wait_until(
        lambda: all(s == "RUNNING" for s in states().values()), timeout_s, interval_s=0.5, message=describe
    )
