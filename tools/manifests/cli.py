"""The command line: print, ``--write`` or ``--check`` k8s/kuberay.yaml; ``--serve-config PATH``.

Run from the repository root: ``python -m tools.manifests --write`` (what ``make manifests`` does).
``--serve-config`` reads configs/serve.yaml only (not k8s/, which the image's build context leaves out).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.manifests.render import REPO_ROOT, SERVE_CONFIG_PATH, generate
from tools.manifests.serve_config import pod_serve_config_text

MANIFEST_PATH = REPO_ROOT / "k8s" / "kuberay.yaml"


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print, ``--write`` or ``--check`` k8s/kuberay.yaml; ``--serve-config PATH`` for the image."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.manifests",
        description="Generate k8s/kuberay.yaml (KubeRay RayService) from configs/serve.yaml and "
        "k8s/values.yaml.",
    )
    mode = parser.add_mutually_exclusive_group()
    shown = _shown(MANIFEST_PATH)
    mode.add_argument("--write", action="store_true", help=f"regenerate {shown}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the manifest differs from its sources")
    mode.add_argument(
        "--serve-config",
        type=Path,
        metavar="PATH",
        help="write configs/serve.yaml as it runs in a container (http_options.host 0.0.0.0) to PATH",
    )
    args = parser.parse_args(argv)
    if args.serve_config is not None:
        args.serve_config.write_text(pod_serve_config_text(SERVE_CONFIG_PATH.read_text()))
        return 0
    text = generate()
    if args.write:
        MANIFEST_PATH.parent.mkdir(parents=True, exist_ok=True)
        MANIFEST_PATH.write_text(text)
        print(f"wrote {shown}")
        return 0
    if args.check:
        current = MANIFEST_PATH.read_text() if MANIFEST_PATH.exists() else ""
        if current == text:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True), shown, "generated"
        )
        sys.stderr.writelines(diff)
        print(f"{shown} is out of date: run `make manifests`", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
