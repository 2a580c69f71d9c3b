#!/usr/bin/env bash
# Install detectron2 into the project's virtualenv, pinned, from PyPI only.
#
# detectron2 has no official PyPI release. The wheel `sal-detectron2==0.7.2` carries FAIR's detectron2
# Python sources (newer than v0.6) plus a C++ extension built only for CPython 3.10. Its pure-Python part
# runs Faster R-CNN on CPython 3.11 (ROIAlign and NMS come from torchvision); rotated boxes and deformable
# convolutions need the extension and are unavailable. pip refuses the wheel's cp310 tags on 3.11, so we
# download it for 3.10, re-tag it as py3-none-any, and install it without dependencies; its pure-Python
# dependencies are pinned in requirements.lock.
set -euo pipefail
VENV_PY="${1:-.venv/bin/python}"
VERSION=0.7.2
CACHE="${DETECTRON2_WHEEL_CACHE:-build/wheels}"
mkdir -p "$CACHE"
if "$VENV_PY" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('sal-detectron2') == '$VERSION' else 1)" 2>/dev/null; then
  echo "detectron2 (sal-detectron2 $VERSION) already installed"
else
  retagged="$CACHE/sal_detectron2-$VERSION-py3-none-any.whl"
  if [[ ! -f "$retagged" ]]; then
    tmp="$(mktemp -d)"
    "$VENV_PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.10 \
      --dest "$tmp" "sal-detectron2==$VERSION"
    mv "$tmp"/sal_detectron2-"$VERSION"-*.whl "$retagged"
    rm -rf "$tmp"
  fi
  SHA256="$(sha256sum "$retagged" | cut -d' ' -f1)"
  echo "installing $retagged (sha256 $SHA256)"
  "$VENV_PY" -m pip install --quiet --no-deps "$retagged"
fi
# Fail loudly, with the reason, if detectron2 cannot build a Faster R-CNN here.
"$VENV_PY" - <<'PY'
import sys
try:
    import detectron2
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
except Exception as exc:  # noqa: BLE001 - report any import failure with its cause
    sys.exit(f"detectron2 is not importable: {type(exc).__name__}: {exc}. See README 'detectron2'.")
cfg = get_cfg()
cfg.MODEL.DEVICE = "cpu"
build_model(cfg)
print(f"detectron2 {detectron2.__version__} ok (Faster R-CNN builds on CPU)")
PY
