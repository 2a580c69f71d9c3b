"""The detectron2 models a Detector serves, as data (no Ray, no torch): names, versions, what they detect.

A **name** (``layout``, ``invoices``) is what callers ask for; ``configs/serve.yaml`` maps it to a URI.
A **version** is a name bound to one content digest: the Detector resolves a name to its current version,
a job keeps the version it started with, and every result records it (provenance).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serve_app.core.errors import InvalidInput

# Model names: short, URL- and log-safe.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
DIGEST_PATTERN = r"^[0-9a-f]{64}$"


class ModelVersion(BaseModel):
    """One version of a named model: where it was loaded from, its content digest and its class names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The name callers use (`?model=`).")
    uri: str = Field(description="Where the files came from (`shipped`, a path or s3://bucket/prefix/).")
    digest: str = Field(description="SHA-256 over the model's files (config, checkpoint, labels).")
    labels: tuple[str, ...] = Field(description="Class names in class-id order: the labels regions carry.")

    @property
    def model_id(self) -> str:
        """The multiplexed model id Serve routes on: one id per version."""
        return f"{self.name}@{self.digest[:16]}"


class ModelInfo(BaseModel):
    """What ``GET /v1/models`` says about one model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    default: bool = Field(description="Used when a request names no model.")
    digest: str
    labels: list[str]
    architecture: str = Field(description="detectron2 META_ARCHITECTURE, e.g. GeneralizedRCNN, RetinaNet.")
    backbone: str = Field(description="Backbone builder and depth, e.g. build_resnet_fpn_backbone R-18.")
    masks: bool = Field(description="Whether the model predicts instance masks (`masks=true` returns them).")
    input_min_size: int = Field(description="Short side of the image the network sees, in pixels.")
    input_max_size: int = Field(description="Cap on the long side, in pixels.")
    checkpoint: str = Field(description="The checkpoint file the weights came from.")
    error: str | None = Field(
        default=None,
        description="Why the last update of this model's entry failed; it still serves this version.",
    )


class ModelsResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str
    models: list[ModelInfo]
    unavailable: dict[str, str] = Field(
        default_factory=dict,
        description="Models named in the configuration that cannot be used, with the reason (requests: 503).",
    )


def unknown_model(name: str, known: list[str]) -> InvalidInput:
    """The 422 for a model name the Detector does not serve."""
    return InvalidInput(f"unknown model {name!r}; known models: {', '.join(sorted(known))}")
