"""k8s/kuberay.yaml, docker/Dockerfile and the Makefile agree with configs/serve.yaml and requirements.lock.

There is no Docker engine or Kubernetes here, so these tests parse the files (standard library + yaml) and
check what each one expects of the others.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.manifests import cli, render, serve_config, sizing, values
from tools.manifests.render import SERVE_ENV_PATH, read_env_file
from tools.manifests.sizing import Demand, GiB, PodSize, Resources

REPO = Path(__file__).resolve().parents[2]
SERVE_YAML = REPO / "configs" / "serve.yaml"
MANIFEST = REPO / "k8s" / "kuberay.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
LOCK = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
# JobRunner render tasks that the worker sizing keeps room for (an operator value)
RENDER_TASKS = values.load_values(REPO / "k8s" / "values.yaml").render_task_headroom


# ---- parsing helpers ---------------------------------------------------------------------------------------


@cache
def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


def cluster() -> dict[str, Any]:
    return dict(manifest()["spec"]["rayClusterConfig"])


def head() -> dict[str, Any]:
    return dict(cluster()["headGroupSpec"])


def worker_group() -> dict[str, Any]:
    groups = cluster()["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["workers"]
    return dict(groups[0])


def only_container(group: dict[str, Any]) -> dict[str, Any]:
    containers = group["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def cpus(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(quantity: str | int) -> int:
    text = str(quantity)
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def pinned_ray() -> str:
    (version,) = re.findall(r"^ray==(\S+)$", LOCK.read_text(), flags=re.MULTILINE)
    return str(version)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, rest = (current + line).partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    assert not current, "Dockerfile ends inside a continuation line"
    return out


def args_of(instruction: str) -> list[str]:
    return list(json.loads(instruction)) if instruction.startswith("[") else shlex.split(instruction)


def copies() -> list[tuple[list[str], list[str], str]]:
    """(flags, sources, destination) of every COPY/ADD."""
    out = []
    for keyword, rest in dockerfile():
        if keyword in ("COPY", "ADD"):
            args = args_of(rest)
            flags = [a for a in args if a.startswith("--")]
            paths = [a for a in args if not a.startswith("--")]
            out.append((flags, paths[:-1], paths[-1]))
    return out


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "negated patterns are not handled here"
    parts = Path(path.strip("/")).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if pattern.startswith("**/"):
                if fnmatch(prefix.rsplit("/", 1)[-1], pattern[3:]):
                    return True
            elif fnmatch(prefix, pattern):
                return True
    return False


def makefile_docker_command() -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGE", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "-s", "-n", "docker"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("docker build")]
    return shlex.split(line)


def ray_groups() -> list[tuple[str, dict[str, Any]]]:
    return [("head", head()), ("workers", worker_group())]


# ---- (a) the manifest is generated -------------------------------------------------------------------------


def test_manifest_is_what_the_generator_produces() -> None:
    assert MANIFEST.read_text() == render.generate(), (
        "k8s/kuberay.yaml differs from its sources (configs/serve.yaml, requirements.lock, pyproject.toml, "
        "k8s/values.yaml, k8s/kuberay.yaml.tmpl, tools/manifests/): run `make manifests`"
    )
    assert cli.main(["--check"]) == 0


def test_check_fails_when_the_manifest_is_edited_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = tmp_path / "kuberay.yaml"
    edited.write_text(MANIFEST.read_text().replace("maxReplicas:", "maxReplicas: 1 #", 1))
    monkeypatch.setattr(cli, "MANIFEST_PATH", edited)
    assert cli.main(["--check"]) == 1
    assert "make manifests" in capsys.readouterr().err


def test_generated_manifest_follows_serve_yaml(tmp_path: Path) -> None:
    serve = tmp_path / "serve.yaml"
    serve.write_text(SERVE_YAML.read_text().replace("max_replicas: 2", "max_replicas: 6"))
    text = render.generate(serve_config_path=serve)
    group = yaml.safe_load(text)["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert text != MANIFEST.read_text()
    assert group["maxReplicas"] > worker_group()["maxReplicas"]


def test_template_placeholders_and_filled_values_must_match() -> None:
    assert render.fill("## template note\na: ${x}  # $$1\n", {"x": 1}) == "a: 1  # $1\n"
    with pytest.raises(ValueError, match=r"unknown \['y'\]"):
        render.fill("a: ${x} ${y}\n", {"x": 1})
    with pytest.raises(ValueError, match=r"unused \['z'\]"):
        render.fill("a: ${x}\n", {"x": 1, "z": 2})


def test_values_file_rejects_typos_and_reads_quantities() -> None:
    text = (REPO / "k8s" / "values.yaml").read_text()
    assert (
        values.parse_values(text).worker.size.capacity.milli_cpus
        == cpus(worker_group()["rayStartParams"]["num-cpus"]) * 1000
    )
    assert values.parse_memory("512Mi") == 512 * 1024**2 and values.parse_memory(1024) == 1024
    assert [values.parse_milli_cpus(v) for v in ("500m", 0.5, 2)] == [500, 500, 2000]
    with pytest.raises(ValueError, match="spare_worker"):
        values.parse_values(text.replace("spare_workers:", "spare_worker:"))
    with pytest.raises(ValueError, match="8GB"):
        values.parse_values(text.replace("memory: 8Gi", "memory: 8GB", 1))


# ---- (b) serveConfigV2 is configs/serve.yaml ---------------------------------------------------------------


def test_serve_config_v2_is_serve_yaml_except_the_pod_host() -> None:
    text = manifest()["spec"]["serveConfigV2"]
    assert isinstance(text, str), "KubeRay expects serveConfigV2 as a YAML string"
    expected = yaml.safe_load(SERVE_YAML.read_text())
    assert expected["http_options"]["host"] != "0.0.0.0"
    expected["http_options"]["host"] = "0.0.0.0"  # the one documented change: listen on the pod IP
    assert yaml.safe_load(text) == expected
    # Textually too (comments kept): only the host line differs.
    changed = [
        (old, new)
        for old, new in zip(SERVE_YAML.read_text().splitlines(), text.splitlines(), strict=True)
        if old != new
    ]
    assert len(changed) == 1 and changed[0][1].strip().startswith("host: 0.0.0.0"), changed


def test_pod_serve_config_adds_a_missing_host_and_touches_nothing_else() -> None:
    text = "# c\nproxy_location: EveryNode\nhttp_options:\n  port: 9000\napplications: []\n"
    out = serve_config.pod_serve_config_text(text)
    assert yaml.safe_load(out) == {
        "proxy_location": "EveryNode",
        "http_options": {"port": 9000, "host": "0.0.0.0"},
        "applications": [],
    }
    bare = serve_config.pod_serve_config_text("applications: []\n")
    assert yaml.safe_load(bare) == {"applications": [], "http_options": {"host": "0.0.0.0"}}


# ---- (c) head ----------------------------------------------------------------------------------------------


def test_head_runs_no_replicas_and_exposes_the_dashboard() -> None:
    params = head()["rayStartParams"]
    assert params["num-cpus"] == "0"
    assert params["dashboard-host"] == "0.0.0.0"
    assert all(isinstance(v, str) for v in params.values()), "KubeRay rayStartParams are strings"


# ---- (d) worker sizing -------------------------------------------------------------------------------------


def deployment_totals_at_max() -> tuple[float, int]:
    """CPU and memory of every deployment at max replicas, plus the render task headroom."""
    config = yaml.safe_load(SERVE_YAML.read_text())
    cpu, memory = 0.0, 0
    for app in config["applications"]:
        for dep in app["deployments"]:
            auto = dep.get("autoscaling_config")
            count = auto["max_replicas"] if auto else dep.get("num_replicas", 1)
            options = dep.get("ray_actor_options", {})
            cpu += count * options.get("num_cpus", 1)
            memory += count * options.get("memory", 0)
            if dep["name"] == "JobRunner":
                cpu += RENDER_TASKS * dep["user_config"]["render_num_cpus"]
    return cpu, memory


def test_workers_hold_every_deployment_at_max_replicas() -> None:
    group = worker_group()
    params = group["rayStartParams"]
    limits = only_container(group)["resources"]["limits"]
    requests = only_container(group)["resources"]["requests"]
    assert requests == limits, "requests == limits, so Ray's view matches what Kubernetes reserves"
    assert cpus(params["num-cpus"]) == cpus(limits["cpu"])
    worker_cpu, worker_memory = cpus(params["num-cpus"]), int(params["memory"])
    assert worker_memory + int(params["object-store-memory"]) < memory_bytes(limits["memory"])
    cpu, memory = deployment_totals_at_max()
    assert group["maxReplicas"] * worker_cpu >= cpu - 1e-9, (group["maxReplicas"], worker_cpu, cpu)
    assert group["maxReplicas"] * worker_memory >= memory, (group["maxReplicas"], worker_memory, memory)
    assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert cluster()["enableInTreeAutoscaling"] is True
    options = cluster()["autoscalerOptions"]
    assert {"idleTimeoutSeconds", "upscalingMode", "resources"} <= set(options)


def test_workers_needed_packs_items_not_just_totals() -> None:
    worker = PodSize(cpus=2, memory=4 * GiB, object_store_memory=GiB // 2, system_reserved_memory=GiB // 2)
    assert worker.capacity == Resources(2000, 3 * GiB)
    # Totals fit two workers (6 GiB), but no two 2 GiB replicas share one: three are needed.
    items = [Demand(f"r{i}", Resources(100, 2 * GiB)) for i in range(3)]
    assert sizing.workers_needed(items, worker) == 3
    assert sizing.workers_needed([Demand("tiny", Resources(50, 0))] * 40, worker) == 1
    assert sizing.workers_needed([], worker) == 0
    with pytest.raises(ValueError, match="does not fit one worker"):
        sizing.workers_needed([Demand("huge", Resources(100, 4 * GiB))], worker)


def test_replica_ranges_follow_serve_defaults() -> None:
    assert sizing.replica_range({"name": "a"}) == (1, 1, 1)
    assert sizing.replica_range({"name": "a", "num_replicas": 3}) == (3, 3, 3)
    auto = {"name": "a", "autoscaling_config": {"min_replicas": 0, "max_replicas": 5}}
    assert sizing.replica_range(auto) == (0, 0, 5)
    assert sizing.replica_resources({"name": "a"}) == Resources(1000, 0)
    with pytest.raises(ValueError, match="num_replicas"):
        sizing.replica_range({"name": "a", "num_replicas": "auto"})


# ---- (e) object store and /dev/shm -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["head", "workers"])
def test_dev_shm_holds_the_object_store(name: str) -> None:
    group = dict(ray_groups())[name]
    store = int(group["rayStartParams"]["object-store-memory"])
    container = only_container(group)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    (volume,) = [v for v in group["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"
    assert memory_bytes(volume["emptyDir"]["sizeLimit"]) >= store
    assert store < memory_bytes(container["resources"]["limits"]["memory"])


# ---- (f) one Ray version everywhere ------------------------------------------------------------------------


def test_ray_version_is_the_same_everywhere() -> None:
    ray = pinned_ray()
    pyproject = tomllib.loads(PYPROJECT.read_text())
    assert f"ray[serve]=={ray}" in pyproject["project"]["dependencies"]
    assert cluster()["rayVersion"] == ray
    app_version = pyproject["project"]["version"]
    for _, group in ray_groups():
        name, tag = only_container(group)["image"].rsplit(":", 1)
        assert name == "serve-app"
        assert tag == f"{app_version}-ray{ray}"
    (base,) = [rest for keyword, rest in dockerfile() if keyword == "FROM" and "rayproject/ray:" in rest]
    match = re.fullmatch(r"rayproject/ray:(\S+)-py(\d)(\d+)-cpu\s+AS\s+\w+", base, flags=re.IGNORECASE)
    assert match, base
    assert match.group(1) == ray
    assert f"{match.group(2)}.{match.group(3)}" == pyproject["tool"]["mypy"]["python_version"]


# ---- (g) Dockerfile ----------------------------------------------------------------------------------------


def test_dockerfile_has_named_stages() -> None:
    stages = [rest for keyword, rest in dockerfile() if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(re.search(r"\sAS\s+\S+$", s, flags=re.IGNORECASE) for s in stages), stages


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    assert copies()
    for flags, sources, _ in copies():
        if any(f.startswith("--from") for f in flags):
            continue
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    for needed_out in (".venv", "build", ".git", "tests", "serve_app/__pycache__/x.pyc"):
        assert dockerignored(needed_out), needed_out


def test_image_runs_as_the_non_root_user_the_pods_expect() -> None:
    users = [rest for keyword, rest in dockerfile() if keyword == "USER"]
    assert users, "the image must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid, so runAsNonRoot can verify it"
    for _, group in ray_groups():
        security = group["template"]["spec"]["securityContext"]
        assert security["runAsUser"] == int(uid)
        assert security["runAsNonRoot"] is True


def test_image_name_matches_the_makefile_docker_tag() -> None:
    command = makefile_docker_command()
    assert command[:2] == ["docker", "build"]
    assert command[command.index("-f") + 1] == "docker/Dockerfile"
    assert command[-1] == ".", "the build context is the repository root (where .dockerignore is)"
    tag = command[command.index("-t") + 1]
    for _, group in ray_groups():
        assert only_container(group)["image"] == tag


def test_image_provides_what_the_manifest_expects() -> None:
    instructions = dockerfile()
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    # Dependencies: the whole lock with torch from the CPU index, then detectron2 by its script.
    assert "-r /tmp/deps/requirements.lock" in runs
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in runs
    assert "install_detectron2.sh" in runs
    assert "pip install --no-deps --no-build-isolation -e ." in runs
    # The package is installed in place next to models/, where it finds the shipped detector.
    destinations = {
        sources[0].rstrip("/"): dest.rstrip("/") for _, sources, dest in copies() if len(sources) == 1
    }
    assert Path(destinations["serve_app"]).parent == Path(destinations["models"]).parent
    workdir = [rest for keyword, rest in instructions if keyword == "WORKDIR"][-1]
    assert Path(destinations["serve_app"]).parent == Path(workdir)
    # The offline settings that the pods also set.
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    pod_env = {e["name"]: e.get("value") for e in only_container(worker_group())["env"]}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        assert env[name] == pod_env[name] == "1"
    # Ray Serve's switches (configs/serve.env), read by every Ray process at start: image, head, workers.
    switches = read_env_file(SERVE_ENV_PATH.read_text())
    assert switches["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    for _, group in ray_groups():
        container_env = {e["name"]: e.get("value") for e in only_container(group)["env"]}
        assert {k: container_env.get(k) for k in switches} == switches
    assert {k: env.get(k) for k in switches} == switches
    # KubeRay generates `ray start` itself: the pods set no command, the image keeps `ray` from its base.
    port = yaml.safe_load(SERVE_YAML.read_text())["http_options"]["port"]
    for _, group in ray_groups():
        container = only_container(group)
        assert "command" not in container and "args" not in container
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["serve"] == port
    exposed = [int(p) for keyword, rest in instructions if keyword == "EXPOSE" for p in rest.split()]
    assert port in exposed
    # Standalone CMD: serve run on the pod variant of configs/serve.yaml, which a RUN step writes.
    (cmd,) = [args_of(rest) for keyword, rest in instructions if keyword == "CMD"]
    assert cmd[:2] == ["serve", "run"]
    assert f"--serve-config {cmd[2]}" in runs
