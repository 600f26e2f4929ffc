"""What an exported model carries for its consumers: classes, input, normalisation, spec, version.

ONNX files keep it as metadata properties (one key per field, each value JSON text); a ``.pt2``
program keeps it in a sidecar JSON file next to it (``model.pt2.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import UsageError
from cnnlab.version import __version__

FIELDS = ("classes", "input_shape", "channels", "mean", "std", "model", "cnnlab_version")


@dataclass(frozen=True)
class ExportMetadata:
    """The class names, the (C, H, W) input, the per-channel mean and std the images are
    normalised with, the model spec and the cnnlab version that wrote the file."""

    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    model: str
    cnnlab_version: str = field(default=__version__)

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def image_size(self) -> int:
        """The side of the square images the model takes."""
        return self.input_shape[1]

    @classmethod
    def from_record(cls, record: dict) -> ExportMetadata:
        """The metadata of a run's model, from its record (``config.json`` or a checkpoint)."""
        data, model = record["data"], record["model"]
        side = data["image_size"]
        return cls(tuple(data["classes"]), (data["in_channels"], side, side), tuple(data["mean"]),
                   tuple(data["std"]), model.get("spec") or model["name"])

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "input_shape": list(self.input_shape),
                "channels": self.channels, "mean": list(self.mean), "std": list(self.std),
                "model": self.model, "cnnlab_version": self.cnnlab_version}

    @classmethod
    def from_dict(cls, values: dict, source: str | Path) -> ExportMetadata:
        """Read `to_dict`'s form; a missing or malformed field is a UsageError naming `source`."""
        missing = [key for key in FIELDS if key not in values]
        if missing:
            what = "no cnnlab metadata" if len(missing) == len(FIELDS) else \
                f"incomplete cnnlab metadata (no {', '.join(missing)})"
            raise UsageError(f"{source} has {what}; export the model with `cnnlab export RUN`")
        try:
            shape = tuple(int(n) for n in values["input_shape"])
            metadata = cls(tuple(str(c) for c in values["classes"]), shape,
                           tuple(float(m) for m in values["mean"]),
                           tuple(float(s) for s in values["std"]), str(values["model"]),
                           str(values["cnnlab_version"]))
            valid = len(shape) == 3 and shape[1] == shape[2] and \
                len(metadata.mean) == len(metadata.std) == shape[0]
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise UsageError(f"{source} has malformed cnnlab metadata; export the model again "
                             "with `cnnlab export RUN`")
        return metadata

    def to_properties(self) -> dict[str, str]:
        """ONNX metadata properties: each field as JSON text."""
        return {key: json.dumps(value) for key, value in self.to_dict().items()}

    @classmethod
    def from_properties(cls, properties: dict[str, str], source: str | Path) -> ExportMetadata:
        try:
            values = {key: json.loads(text) for key, text in properties.items() if key in FIELDS}
        except json.JSONDecodeError:
            raise UsageError(f"{source} has malformed cnnlab metadata; export the model again "
                             "with `cnnlab export RUN`") from None
        return cls.from_dict(values, source)


def sidecar_path(program: str | Path) -> Path:
    """Where a ``.pt2`` program's metadata lives: the same name with ``.json`` added."""
    program = Path(program)
    return program.with_name(program.name + ".json")


def read_sidecar(program: str | Path) -> ExportMetadata:
    """The metadata next to a ``.pt2`` program; a missing or unreadable file is a UsageError."""
    path = sidecar_path(program)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{program} has no cnnlab metadata: {path.name} is missing next to it; "
                         "export the model with `cnnlab export RUN --format pt2`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path} as cnnlab metadata ({exc})") from None
    if not isinstance(values, dict):
        raise UsageError(f"{path} is not a JSON object of cnnlab metadata")
    return ExportMetadata.from_dict(values, path)
