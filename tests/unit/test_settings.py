from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from serve_app.core.errors import ConfigError
from serve_app.settings import (
    DEFAULT_NUM_CPUS,
    DEPLOYMENT_CONFIGS,
    AppArgs,
    ClustererConfig,
    DetectorConfig,
    EmbedderConfig,
    IngressConfig,
    ModelEntry,
    parse_settings,
)
from tools.launch import DEFAULT_CONFIG, load_config


def test_unknown_key_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="Embedder user_config: max_batch_sise: Extra inputs"):
        parse_settings(EmbedderConfig, {"max_batch_sise": 8}, where="Embedder user_config")


def test_bad_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match="linkage"):
        parse_settings(ClustererConfig, {"linkage": "centroid"}, where="Clusterer user_config")
    with pytest.raises(ConfigError, match="max_sentences"):
        parse_settings(IngressConfig, {"max_sentences": 0}, where="Ingress user_config")


def test_app_args_reject_typos() -> None:
    assert parse_settings(AppArgs, None, where="args") == AppArgs()
    with pytest.raises(ConfigError, match="embeder_model_path"):
        parse_settings(AppArgs, {"embeder_model_path": "/x"}, where="args")


def test_serve_yaml_passes_serve_schema_and_ours() -> None:
    config = load_config(DEFAULT_CONFIG)
    (app,) = config.applications
    assert app.import_path == "serve_app.app:build_app"
    names = {d.name for d in app.deployments}
    assert names == set(DEPLOYMENT_CONFIGS)
    # The shipped sizes fit the 2-core development machine: every deployment can start at once.
    assert sum(d.ray_actor_options.num_cpus or 0 for d in app.deployments) <= 2.0
    for dep in app.deployments:
        options = dep.ray_actor_options
        assert options.num_cpus and options.num_cpus > 0, dep.name
        assert options.memory and options.memory > 0, dep.name
        assert dep.max_ongoing_requests is not None, dep.name
        assert dep.health_check_period_s is not None, dep.name
    embedder = next(d for d in app.deployments if d.name == "Embedder")
    autoscaling = embedder.autoscaling_config
    assert isinstance(autoscaling, dict)
    assert 1 <= autoscaling["min_replicas"] <= autoscaling["max_replicas"]


def test_typo_in_serve_yaml_user_config_fails_loading(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["applications"][0]["deployments"][1]["user_config"]["max_batch_sise"] = 8
    bad = tmp_path / "serve.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="max_batch_sise"):
        load_config(bad)


def test_port_override() -> None:
    assert load_config(DEFAULT_CONFIG, port=8765).http_options.port == 8765


def test_serve_yaml_restates_the_defaults_of_settings() -> None:
    """settings.py is the one home of defaults; configs/serve.yaml spells them out for operators and
    must not drift from them (resources included: `serve run serve_app.app:build_app` uses the defaults)."""
    (app,) = load_config(DEFAULT_CONFIG).applications
    for dep in app.deployments:
        assert dep.ray_actor_options.num_cpus == DEFAULT_NUM_CPUS[dep.name], dep.name
        assert isinstance(dep.user_config, dict), dep.name
        defaults = DEPLOYMENT_CONFIGS[dep.name]().model_dump()
        assert dep.user_config == {k: defaults[k] for k in dep.user_config}, dep.name


def test_default_resources_fit_a_two_core_machine() -> None:
    assert set(DEFAULT_NUM_CPUS) == set(DEPLOYMENT_CONFIGS)
    assert sum(DEFAULT_NUM_CPUS.values()) <= 2.0


def test_the_detector_model_table_is_checked_before_anything_loads() -> None:
    where = "Detector user_config"
    default = parse_settings(DetectorConfig, None, where=where)
    assert (
        default.model_entries() == {"layout": ModelEntry(uri="shipped")} and default.default_model == "layout"
    )
    table = parse_settings(
        DetectorConfig,
        {
            "models": {"layout": "shipped", "invoices": {"uri": "s3://b/m/v3/", "checkpoint": "model_1.pth"}},
            "default_model": "invoices",
        },
        where=where,
    )
    assert table.model_entries()["invoices"] == ModelEntry(uri="s3://b/m/v3/", checkpoint="model_1.pth")
    for bad, message in (
        ({"models": {"Bad Name": "x"}, "default_model": "x"}, "model names must match"),
        ({"models": {"a": "x"}, "default_model": "b"}, "default_model 'b' is not in models (a)"),
        ({"models": {}}, "models"),
        ({"models": {"a": {"uri": "x", "digest": "not-hex"}}, "default_model": "a"}, "digest"),
        ({"models": {"a": {"uri": "x", "checkpoint": "../up.pth"}}, "default_model": "a"}, "checkpoint"),
        ({"models": {"a": {"url": "x"}}, "default_model": "a"}, "url"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_settings(DetectorConfig, bad, where=where)
