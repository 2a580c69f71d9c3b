"""Where a detectron2 model comes from: a local directory or an S3 prefix, fetched once per node (no Ray).

A model is what detectron2 itself writes into a training output directory:

- ``config.yaml``, as ``cfg.dump()`` writes it (detectron2's ``default_setup`` writes it for you);
- a checkpoint: ``model_final.pth`` (``DefaultTrainer``/``DetectionCheckpointer``), a plain or fp16 state
  dict, or a model-zoo ``.pkl``. With several checkpoints in the directory, ``model_final.pth`` wins,
  then the one named in detectron2's ``last_checkpoint`` file; ``checkpoint:`` in the model entry
  picks one explicitly;
- ``labels.json``: the class names in class-id order, a JSON list (``["stamp", "signature"]``) or
  ``{"thing_classes": [...]}``. Without it, the metadata of the config's dataset is used when detectron2
  knows it (its built-in datasets, such as ``coco_2017_train``).

Other files (``metrics.json``, TensorBoard events, intermediate checkpoints) are ignored and never fetched.

A model in S3 is downloaded once per node into a cache directory (``$SERVE_APP_MODEL_CACHE``, default
``$TMPDIR/serve_app_models``) named by its **digest**: the SHA-256 over the files it is loaded from (their
roles and contents, not their names). A download is verified against the digest pinned in
``configs/serve.yaml`` when one is given; a cached copy is re-hashed before every use, so a truncated or
edited file never loads. Replicas on one node that start together download once (a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from serve_app.core.errors import ModelUnavailable

CONFIG_FILE = "config.yaml"
LABELS_FILE = "labels.json"
FINAL_CHECKPOINT = "model_final.pth"
LAST_CHECKPOINT = "last_checkpoint"  # detectron2's pointer to the newest checkpoint of a run
CHECKPOINT_SUFFIXES = (".pth", ".pkl", ".pt")
MODEL_CACHE_ENV = "SERVE_APP_MODEL_CACHE"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "serve_app_models"
# The shipped layout model: ``models/layout_detector`` in this repository (see its MODEL_CARD.md).
SHIPPED = "shipped"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models" / "layout_detector"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFiles:
    """The files one model is loaded from, on this node, and their digest."""

    uri: str
    config: Path
    checkpoint: Path
    labels: Path | None
    digest: str  # hex SHA-256 (see ``files_digest``)
    checkpoint_name: str  # the checkpoint's name where the model came from (cached copies are renamed)

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.config, self.checkpoint, self.labels) if p is not None]


def cache_dir() -> Path:
    """The node's model cache: ``$SERVE_APP_MODEL_CACHE`` or ``DEFAULT_CACHE_DIR``."""
    return Path(os.environ.get(MODEL_CACHE_ENV) or DEFAULT_CACHE_DIR)


def choose_files(
    names: Sequence[str], *, uri: str, checkpoint: str | None = None, last: str | None = None
) -> dict[str, str]:
    """Which of the file ``names`` found at ``uri`` make the model: ``{"config", "checkpoint"[, "labels"]}``.

    ``checkpoint`` is an explicit choice; ``last`` the content of detectron2's ``last_checkpoint`` file.
    Raises ``ModelUnavailable`` naming what is missing and what was found.
    """
    present = set(names)
    found = ", ".join(sorted(present)) or "nothing"
    if CONFIG_FILE not in present:
        raise ModelUnavailable(f"model {uri} has no {CONFIG_FILE} (found: {found}); write it with cfg.dump()")
    candidates = sorted(n for n in present if n.endswith(CHECKPOINT_SUFFIXES))
    if checkpoint is not None:
        if checkpoint not in present:
            raise ModelUnavailable(f"model {uri} has no checkpoint {checkpoint!r} (found: {found})")
        chosen = checkpoint
    elif FINAL_CHECKPOINT in present:
        chosen = FINAL_CHECKPOINT
    elif last and last.strip() in present:
        chosen = last.strip()
    elif len(candidates) == 1:
        chosen = candidates[0]
    elif not candidates:
        raise ModelUnavailable(f"model {uri} has no checkpoint (*.pth, *.pkl or *.pt; found: {found})")
    else:
        raise ModelUnavailable(
            f"model {uri} has several checkpoints ({', '.join(candidates)}) and no {FINAL_CHECKPOINT}; "
            "name one with `checkpoint:` in its entry in configs/serve.yaml"
        )
    files = {"config": CONFIG_FILE, "checkpoint": chosen}
    if LABELS_FILE in present:
        files["labels"] = LABELS_FILE
    return files


def files_digest(files: dict[str, Path]) -> str:
    """SHA-256 over each file's role and content hash, in role order.

    Renaming a file keeps the digest (the checkpoint's suffix counts: ``.pkl`` and ``.pth`` load
    differently).
    """
    outer = hashlib.sha256()
    for role in sorted(files):
        inner = hashlib.sha256()
        with open(files[role], "rb") as f:
            while chunk := f.read(_CHUNK):
                inner.update(chunk)
        tag = role + files[role].suffix if role == "checkpoint" else role
        outer.update(f"{tag}:{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


def _cached_name(role: str, name: str) -> str:
    """The name a fetched file gets in the cache: by role, so one content is one directory."""
    return {"config": CONFIG_FILE, "labels": LABELS_FILE}.get(role) or "model" + Path(name).suffix


def read_labels(path: Path) -> list[str]:
    """Class names from ``labels.json``: a list of strings, or ``{"thing_classes": [...]}``."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelUnavailable(f"{path.name} does not parse as JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("thing_classes")
    if (
        not isinstance(data, list)
        or not data
        or not all(isinstance(x, str) and x.strip() for x in data)
        or len(set(data)) != len(data)
    ):
        raise ModelUnavailable(
            f"{path.name} must be a non-empty list of distinct class names "
            '(["a", "b"] or {"thing_classes": ["a", "b"]})'
        )
    return [str(x) for x in data]


def locate(
    uri: str, *, checkpoint: str | None = None, digest: str | None = None, client: Any | None = None
) -> ModelFiles:
    """The files of the model at ``uri`` on this node, fetched into the cache first when it is in S3.

    ``uri``: ``shipped``, a directory path, ``file:///dir`` or ``s3://bucket/prefix``. ``digest``: the
    expected digest (``ModelUnavailable`` when the files differ).
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise ModelUnavailable(f"model URI {uri!r} needs a bucket: s3://bucket/prefix/")
        return _fetch_s3(uri, parts.netloc, unquote(parts.path).strip("/"), checkpoint, digest, client)
    if uri == SHIPPED:
        directory = SHIPPED_DIR
    elif scheme == "file":
        directory = Path(unquote(parts.path))
    elif scheme == "":
        directory = Path(uri)
    else:
        raise ModelUnavailable(
            f"model URI {uri!r}: use s3://bucket/prefix/, file:///dir, a path or {SHIPPED!r}"
        )
    return _local(uri, directory, checkpoint, digest)


def _local(uri: str, directory: Path, checkpoint: str | None, digest: str | None) -> ModelFiles:
    if not directory.is_dir():
        raise ModelUnavailable(f"model directory {directory} does not exist (from {uri!r})")
    names = [p.name for p in directory.iterdir() if p.is_file()]
    last = _read_text(directory / LAST_CHECKPOINT) if LAST_CHECKPOINT in names else None
    chosen = {
        role: directory / name
        for role, name in choose_files(names, uri=uri, checkpoint=checkpoint, last=last).items()
    }
    return _checked(uri, chosen, digest)


def _checked(
    uri: str, files: dict[str, Path], expected: str | None, checkpoint_name: str | None = None
) -> ModelFiles:
    actual = files_digest(files)
    if expected is not None and actual != expected.lower():
        raise ModelUnavailable(
            f"model {uri} has digest {actual}, not the {expected} pinned in configs/serve.yaml "
            "(the files changed: pin the new digest or restore the old files)"
        )
    return ModelFiles(
        uri=uri,
        config=files["config"],
        checkpoint=files["checkpoint"],
        labels=files.get("labels"),
        digest=actual,
        checkpoint_name=checkpoint_name or files["checkpoint"].name,
    )


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:1000]
    except OSError:
        return None


def _fetch_s3(
    uri: str, bucket: str, prefix: str, checkpoint: str | None, expected: str | None, client: Any | None
) -> ModelFiles:
    from botocore.exceptions import BotoCoreError, ClientError

    from serve_app.core.storage import default_s3_client

    s3 = client if client is not None else default_s3_client()
    root = f"{prefix}/" if prefix else ""
    try:
        listing = _list(s3, bucket, root)
        last = None
        if LAST_CHECKPOINT in listing:
            body = s3.get_object(Bucket=bucket, Key=root + LAST_CHECKPOINT)["Body"]
            last = body.read(1000).decode("utf-8", "replace")
        chosen = choose_files(list(listing), uri=uri, checkpoint=checkpoint, last=last)
        # What the listing says about the chosen objects names the download; the digest names the content.
        listed = hashlib.sha256(uri.encode())
        for role in sorted(chosen):
            size, etag = listing[chosen[role]]
            listed.update(f"{role}:{chosen[role]}:{size}:{etag}\n".encode())
        cache = cache_dir()
        index = cache / "index" / listed.hexdigest()
        names = {role: _cached_name(role, name) for role, name in chosen.items()}
        with _locked(cache / "locks" / f"{listed.hexdigest()}.lock"):
            known = (_read_text(index) or "").strip()
            if known and _verified(cache / known, names, known):
                return _checked(
                    uri, {r: cache / known / n for r, n in names.items()}, expected, chosen["checkpoint"]
                )
            scratch = Path(tempfile.mkdtemp(prefix="fetch-", dir=_made(cache)))
            try:
                for role, name in chosen.items():
                    s3.download_file(bucket, root + name, str(scratch / names[role]))
                digest = files_digest({role: scratch / n for role, n in names.items()})
                if expected is not None and digest != expected.lower():
                    _checked(uri, {role: scratch / n for role, n in names.items()}, expected)  # raises
                final = cache / digest
                if not _verified(final, names, digest):
                    shutil.rmtree(final, ignore_errors=True)
                    scratch.rename(final)
                index.parent.mkdir(parents=True, exist_ok=True)
                index.write_text(digest)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return _checked(uri, {r: final / n for r, n in names.items()}, expected, chosen["checkpoint"])
    except (BotoCoreError, ClientError) as exc:
        raise ModelUnavailable(f"cannot read model {uri}: {exc}") from None
    except OSError as exc:
        raise ModelUnavailable(f"cannot cache model {uri} in {cache_dir()}: {exc}") from None


def _verified(directory: Path, names: dict[str, str], digest: str) -> bool:
    """Whether ``directory`` holds these files with this digest (a cached copy is re-hashed before use)."""
    files = {role: directory / n for role, n in names.items()}
    return all(p.is_file() for p in files.values()) and files_digest(files) == digest


def _made(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _list(s3: Any, bucket: str, root: str) -> dict[str, tuple[int, str]]:
    """Files directly under ``root`` (not in sub-folders): name -> (size, ETag)."""
    listing: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root, Delimiter="/"):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(root) :]
            if name:
                listing[name] = (int(obj["Size"]), str(obj.get("ETag", "")))
    return listing


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between the processes of this node (replicas starting together fetch once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
