"""docs/architecture.md draws every package and module of serve_app and tools: the map stays the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def picture() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    first = re.search(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert first, "docs/architecture.md has no Mermaid diagram"
    return first.group(1)


def test_every_package_and_module_is_in_the_picture() -> None:
    drawn = picture()
    for package in ("serve_app", "tools"):
        assert f"{package}/" in drawn, package
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if len(relative.parts) > 3 or path.name in ("__init__.py", "__main__.py"):
                continue  # training/synth/*: the synth/ package is drawn as one
            if len(relative.parts) == 3:  # a subpackage: its box is drawn
                subpackage = f"{package}/{relative.parts[1]}/"
                assert subpackage in drawn or f"{relative.parts[1]}/" in drawn, f"{subpackage} is not drawn"
            assert re.search(rf"\b{path.stem}\b", drawn), f"{relative} is not named in the picture"
