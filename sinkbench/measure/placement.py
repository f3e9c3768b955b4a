"""Where a model's weights go when it does not fit one device: `--device-map` and `--max-memory`, checked before loading.

Torch-free on purpose: the CLI checks these flags before it imports torch or loads anything.
Loading itself is accelerate's big-model loading, through `from_pretrained(device_map=...,
max_memory=...)` (sinkbench.measure.models).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sinkbench.errors import SinkbenchError

# accelerate's named strategies; "auto" fills the GPUs in order, then the CPU, then the disk.
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)


@dataclass(frozen=True)
class Placement:
    """A device map strategy and per-device memory caps: {0: "2GiB", "cpu": "8GiB"}."""

    device_map: str
    max_memory: dict[int | str, str] | None = None

    @classmethod
    def from_args(cls, device_map: str | None, max_memory: str | None, device: str = "cpu") -> "Placement | None":
        """None when neither flag is given (the model loads whole onto `device`)."""
        if device_map is None:
            if max_memory is not None:
                raise SinkbenchError("--max-memory caps what --device-map places on each device: add --device-map auto")
            return None
        if device_map not in DEVICE_MAPS:
            raise SinkbenchError(f"--device-map must be one of {', '.join(DEVICE_MAPS)}, got '{device_map}'")
        if device != "cpu":
            raise SinkbenchError(f"--device {device} and --device-map both say where the model goes: give one of them")
        return cls(device_map, parse_max_memory(max_memory) if max_memory is not None else None)


def parse_max_memory(text: str) -> dict[int | str, str]:
    """'0=2GiB,cpu=8GiB' -> {0: '2GiB', 'cpu': '8GiB'}: a GPU index, cpu or mps, each with a size."""
    caps: dict[int | str, str] = {}
    for part in text.split(","):
        device, sep, size = (piece.strip() for piece in part.partition("="))
        if not sep or not device or not size:
            raise SinkbenchError(f"--max-memory takes DEVICE=SIZE pairs separated by commas (0=20GiB,cpu=64GiB), got '{text}'")
        key: int | str = int(device) if device.isdigit() else device
        if isinstance(key, str) and key not in ("cpu", "mps"):
            raise SinkbenchError(f"--max-memory: unknown device '{device}' (a GPU index such as 0, cpu or mps)")
        if not _SIZE.match(size):
            raise SinkbenchError(f"--max-memory: '{size}' for {device} is not a size such as 500MiB or 20GiB")
        if key in caps:
            raise SinkbenchError(f"--max-memory names {device} twice")
        caps[key] = size.replace(" ", "")
    return caps
