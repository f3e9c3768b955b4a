"""What a checkpoint's weights are, read from its files: format, quantization, and the checkpoint's own names.

A record says `dtype: float32` for a GGUF model because transformers dequantizes it to that dtype
for computing; the numbers still come from Q4 weights. This module reads what is stored, without
loading a tensor: a GGUF file's metadata and tensor table, a safetensors file's JSON header, a
folder's config.json and model card. Names are the `gguf` library's own (`LlamaFileType`,
`GGMLQuantizationType`) and safetensors' own dtype strings. No torch.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections import Counter
from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path
from typing import Any

import yaml
from gguf import GGUF_MAGIC, GGMLQuantizationType, GGUFValueType, LlamaFileType

from sinkbench.errors import SinkbenchError

MAX_TEXT = 200  # a checkpoint name longer than this is cut (the record schema bounds its strings)
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own limit
# The keys by their names in the GGUF specification (older gguf releases lack some of gguf.Keys.General).
FILE_TYPE, NAME, BASENAME = "general.file_type", "general.name", "general.basename"
SIZE_LABEL, FINETUNE, BASE_MODEL_NAME = "general.size_label", "general.finetune", "general.base_model.0.name"


@dataclass(frozen=True)
class WeightsDescription:
    """The weights as stored, and what the checkpoint calls itself. None where the files do not say."""

    format: str | None  # "gguf", "safetensors" or "pytorch"; None when no weights file was found
    quantization: str | None  # GGUF file type ("Q4_K_M"), else the stored type of most values ("BF16", "Q8_0")
    tensor_types: tuple[str, ...]  # every stored type, most values first; () for pickle weights (not opened)
    file: str | None  # the weights file's name when there is one file (it may say what metadata does not)
    checkpoint: str | None  # GGUF general.name, or config.json's _name_or_path
    basename: str | None  # GGUF general.basename, e.g. "smollm2"
    size_label: str | None  # GGUF general.size_label, e.g. "135M"
    finetune: str | None  # GGUF general.finetune, e.g. "Instruct"
    base_model: str | None  # GGUF general.base_model.0.name, or the model card's base_model

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tensor_types": list(self.tensor_types)}


NOTHING = WeightsDescription(None, None, (), None, None, None, None, None, None)


def describe_weights(path: Path | None) -> WeightsDescription:
    """Describe a .gguf file or a model folder (safetensors or pickle weights); None describes nothing."""
    if path is None:
        return NOTHING
    path = Path(path)
    if path.is_file() and path.suffix == ".gguf":
        return _describe_gguf(path)
    if path.is_dir():
        return _describe_folder(path)
    return NOTHING


# ---- GGUF ---------------------------------------------------------------------------------

def _describe_gguf(path: Path) -> WeightsDescription:
    metadata, tensors = read_gguf_header(path)
    values = Counter()
    for type_id, n_values in tensors:
        values[_name(GGMLQuantizationType, type_id) or f"TYPE_{type_id}"] += n_values
    types = tuple(name for name, _ in sorted(values.items(), key=lambda item: (-item[1], item[0])))
    file_type = _name(LlamaFileType, metadata.get(FILE_TYPE))
    if file_type == "GUESSED":  # llama.cpp's run-time flag, not a type
        file_type = None
    return WeightsDescription(
        format="gguf",
        # ALL_F32, MOSTLY_Q4_K_M: the prefix says how uniformly the type is used, not which type it is
        quantization=file_type.removeprefix("MOSTLY_").removeprefix("ALL_") if file_type else (types[0] if types else None),
        tensor_types=types, file=_text(path.name),
        checkpoint=_text(metadata.get(NAME)), basename=_text(metadata.get(BASENAME)),
        size_label=_text(metadata.get(SIZE_LABEL)), finetune=_text(metadata.get(FINETUNE)),
        base_model=_text(metadata.get(BASE_MODEL_NAME)),
    )


def _name(enum, value) -> str | None:
    try:
        return enum(value).name if isinstance(value, int) else None
    except ValueError:  # a type newer than the installed gguf library
        return None


_SCALARS = {GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H", GGUFValueType.INT16: "h",
            GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i", GGUFValueType.FLOAT32: "f", GGUFValueType.BOOL: "?",
            GGUFValueType.UINT64: "Q", GGUFValueType.INT64: "q", GGUFValueType.FLOAT64: "d"}


def read_gguf_header(path: Path) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """A GGUF file's scalar and string metadata (arrays are skipped: the tokenizer's vocabulary is most of
    the header), and its tensors as (type id, number of values).

    gguf.GGUFReader builds a numpy view of every one of those vocabulary strings: 5 s for SmolLM2's
    header, 23 s for Gemma 3's here. This walks the same layout (GGUF v2/v3) in well under a second."""
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _Header(data).read()
    except (struct.error, ValueError, UnicodeDecodeError, OSError) as err:
        raise SinkbenchError(f"{path}: not a readable GGUF file ({err})") from None


class _Header:
    def __init__(self, data):
        self.data, self.at = data, 0
        self.order = "<"
        magic, version = struct.unpack_from("<II", data, 0)
        if magic != GGUF_MAGIC:
            raise ValueError("no GGUF magic number")
        if version & 0xFFFF == 0:  # a big-endian file: its version reads byte-swapped
            self.order, version = ">", struct.unpack_from(">I", data, 4)[0]
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version}, not 2 or 3")
        self.at = 8

    def _unpack(self, code: str):
        (value,) = struct.unpack_from(self.order + code, self.data, self.at)
        self.at += struct.calcsize(code)
        return value

    def _string(self) -> str:
        length = self._unpack("Q")
        text = self.data[self.at:self.at + length].decode("utf-8")
        self.at += length
        return text

    def _value(self, kind: int):
        kind = GGUFValueType(kind)
        if kind == GGUFValueType.STRING:
            return self._string()
        if kind == GGUFValueType.ARRAY:
            item, count = GGUFValueType(self._unpack("I")), self._unpack("Q")
            if item in _SCALARS:  # skipped at once
                self.at += count * struct.calcsize(_SCALARS[item])
            else:
                for _ in range(count):
                    self._value(item)
            return None
        return self._unpack(_SCALARS[kind])

    def read(self) -> tuple[dict[str, Any], list[tuple[int, int]]]:
        n_tensors, n_keys = self._unpack("Q"), self._unpack("Q")
        metadata = {}
        for _ in range(n_keys):
            key = self._string()
            metadata[key] = self._value(self._unpack("I"))
        tensors = []
        for _ in range(n_tensors):
            self._string()  # the tensor's name
            dims = [self._unpack("Q") for _ in range(self._unpack("I"))]
            type_id = self._unpack("I")
            self._unpack("Q")  # its offset in the data section
            tensors.append((type_id, prod(dims)))
        return metadata, tensors


# ---- folders: safetensors or pickle --------------------------------------------------------

def _describe_folder(folder: Path) -> WeightsDescription:
    safetensors = sorted(folder.glob("*.safetensors"))
    pickles = sorted([*folder.glob("*.bin"), *folder.glob("*.pt")])
    files = safetensors or pickles  # transformers prefers safetensors where both are present
    values: Counter = Counter()
    for file in safetensors:
        for dtype, n_values in safetensors_dtypes(file).items():
            values[dtype] += n_values
    types = tuple(name for name, _ in sorted(values.items(), key=lambda item: (-item[1], item[0])))
    config = _json(folder / "config.json")
    return WeightsDescription(
        format="safetensors" if safetensors else "pytorch" if pickles else None,
        quantization=types[0] if types else None, tensor_types=types,
        file=_text(files[0].name) if len(files) == 1 else None,
        checkpoint=_text(config.get("_name_or_path")), basename=None, size_label=None, finetune=None,
        base_model=_card_base_model(folder / "README.md"),
    )


def safetensors_dtypes(path: Path) -> dict[str, int]:
    """dtype -> number of values stored in one safetensors file, from its JSON header alone."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > MAX_SAFETENSORS_HEADER:
                raise ValueError(f"a header of {length} bytes")
            header = json.loads(handle.read(length))
        counts: Counter = Counter()
        for name, entry in header.items():
            if name != "__metadata__":
                counts[str(entry["dtype"])] += prod(int(d) for d in entry["shape"])
        return dict(counts)
    except (struct.error, ValueError, KeyError, TypeError, AttributeError, OSError) as err:
        raise SinkbenchError(f"{path}: not a readable safetensors file ({err})") from None


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _card_base_model(readme: Path) -> str | None:
    """The model card's `base_model` (YAML front matter, the Hub's convention), first of a list."""
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---"):
        return None
    front = text[3:].split("\n---", 1)[0]
    try:
        card = yaml.safe_load(front)
    except yaml.YAMLError:  # a card that is not YAML says nothing about its base
        return None
    base = card.get("base_model") if isinstance(card, dict) else None
    return _text(base[0] if isinstance(base, list) and base else base)


def _text(value) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = " ".join(value.split())
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
