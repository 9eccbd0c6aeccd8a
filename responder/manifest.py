"""The model manifest (``artifacts/ml/model-manifest.json``): which version of each model is
deployed and the sha256 of its artifact. Extra fields are tolerated."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, ValidationError

from responder.errors import PermanentError

_HEX = re.compile(r"^[0-9a-f]{64}$")


class Artifact(BaseModel):
    model_config = ConfigDict(extra="allow")
    uri: str = ""
    sha256: str = ""


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    modelId: str
    version: str
    modelVersion: str | None = None
    artifact: Artifact | None = None
    servingEndpoint: str | None = None

    @property
    def current_version(self) -> str:
        return self.modelVersion or self.version


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")
    schemaVersion: int | None = None
    models: list[ModelEntry]

    @classmethod
    def parse(cls, text: str, *, source: str) -> Manifest:
        try:
            return cls.model_validate(json.loads(text))
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise PermanentError(f"{source} is not a valid model manifest: {first}", system="github") from None

    def find(self, model_id: str) -> ModelEntry | None:
        return next((m for m in self.models if m.modelId == model_id), None)


def normalise_digest(value: str) -> str:
    """'sha256:ABC...' and 'abc...' compare equal: strip the algorithm prefix, lower-case."""
    value = value.strip().lower()
    return value.removeprefix("sha256:")


def is_sha256(value: str) -> bool:
    return bool(_HEX.match(value))
