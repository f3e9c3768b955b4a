"""What a record says was measured: describe_weights on tiny GGUF and safetensors files written here, the record
schema's versioned fields, and the words the report and the board put beside a model's name."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFEndian, GGUFWriter, LlamaFileType
from gguf.quants import quantize
from safetensors.torch import save_file

from board_helpers import file_board, run_cli
from sinkbench.testing.records import record
from sinkbench.errors import SinkbenchError
from sinkbench.measure.weights import describe_weights
from sinkbench.record.identity import describe_model, weights_tag
from sinkbench.record.report import render_record
from sinkbench.record.types import ABSENT, Model, Record, Weights
from sinkbench.record.validate import schema_problems

# ---- GGUF ---------------------------------------------------------------------------------


def write_gguf(path, tensors, file_type=None, endian=GGUFEndian.LITTLE, **general):
    """A GGUF file with the given tensors ({name: (GGML type, shape)}), a vocabulary array to skip, and
    general.* metadata (name, basename, size_label, finetune, base_model)."""
    writer = GGUFWriter(path, "llama", endianess=endian)
    for key, setter in (("name", writer.add_name), ("basename", writer.add_basename),
                        ("size_label", writer.add_size_label), ("finetune", writer.add_finetune)):
        if key in general:
            setter(general[key])
    if "base_model" in general:
        writer.add_base_model_count(1)
        writer.add_base_model_name(0, general["base_model"])
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_token_list(["<s>", "a", "bb", "ccc"])  # a string array before the tensor table
    writer.add_token_scores([0.0, -1.0, -2.0, -3.0])
    for name, (kind, shape) in tensors.items():
        values = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        if kind == GGMLQuantizationType.F16:
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(values, kind), raw_dtype=kind)  # shape read from the bytes
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


Q8, F16 = GGMLQuantizationType.Q8_0, GGMLQuantizationType.F16


@pytest.mark.parametrize("endian", [GGUFEndian.LITTLE, GGUFEndian.BIG])
def test_gguf_file_type_names_and_finetune(tmp_path, endian):
    # 2 x 64 = 128 values in Q8_0, 4 x 8 = 32 in F16: Q8_0 holds most values, and the file type says Q8_0
    path = write_gguf(tmp_path / "Tiny-1M-Instruct.Q8_0.gguf", {"w": (Q8, (2, 64)), "norm": (F16, (4, 8))},
                      file_type=LlamaFileType.MOSTLY_Q8_0, endian=endian, name="Tiny 1M Instruct",
                      basename="tiny", size_label="1M", finetune="Instruct", base_model="Tiny 1M")
    described = describe_weights(path)
    assert described.to_dict() == {
        "format": "gguf", "quantization": "Q8_0", "tensor_types": ["Q8_0", "F16"],
        "file": "Tiny-1M-Instruct.Q8_0.gguf", "checkpoint": "Tiny 1M Instruct", "basename": "tiny",
        "size_label": "1M", "finetune": "Instruct", "base_model": "Tiny 1M"}


def test_gguf_file_type_is_named_even_where_the_tensors_disagree(tmp_path):
    # A Q4_K_M file keeps some tensors in other types (Gemma 3 270M: most values in Q8_0); the file type rules
    path = write_gguf(tmp_path / "m.gguf", {"w": (Q8, (2, 64))}, file_type=LlamaFileType.MOSTLY_Q4_K_M)
    described = describe_weights(path)
    assert (described.quantization, described.tensor_types) == ("Q4_K_M", ("Q8_0",))
    assert (described.checkpoint, described.finetune, described.base_model) == (None, None, None)  # not in the file
    all_f32 = write_gguf(tmp_path / "f.gguf", {"w": (F16, (2, 4))}, file_type=LlamaFileType.ALL_F32)
    assert describe_weights(all_f32).quantization == "F32"  # ALL_F32: the prefix is not part of the type


@pytest.mark.parametrize("file_type", [None, 999])  # no general.file_type; a type this gguf library does not know
def test_gguf_without_a_known_file_type_names_the_type_of_most_values(tmp_path, file_type):
    # F16: 8 x 8 = 64 values; Q8_0: 1 x 32 = 32 values
    path = write_gguf(tmp_path / "m.gguf", {"a": (Q8, (1, 32)), "b": (F16, (8, 8))}, file_type=file_type)
    described = describe_weights(path)
    assert (described.quantization, described.tensor_types) == ("F16", ("F16", "Q8_0"))


def test_a_broken_gguf_file_is_one_line(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x05")  # the header stops short
    with pytest.raises(SinkbenchError, match=r"broken.gguf: not a readable GGUF file") as caught:
        describe_weights(path)
    assert "\n" not in str(caught.value)


# ---- safetensors and pickle folders -------------------------------------------------------


def test_safetensors_folder_names_its_stored_dtypes(tmp_path):
    # bf16: 4 x 8 = 32 values, f32: 8: BF16 first
    save_file({"embed": torch.zeros(4, 8, dtype=torch.bfloat16), "norm": torch.ones(8)}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "org/tiny-instruct", "model_type": "llama"}))
    (tmp_path / "README.md").write_text("---\nlicense: mit\nbase_model:\n- org/tiny\n---\n# Tiny\n")
    assert describe_weights(tmp_path).to_dict() == {
        "format": "safetensors", "quantization": "BF16", "tensor_types": ["BF16", "F32"], "file": "model.safetensors",
        "checkpoint": "org/tiny-instruct", "basename": None, "size_label": None, "finetune": None,
        "base_model": "org/tiny"}


def test_sharded_safetensors_add_up_and_name_no_file(tmp_path):
    # shard 1: 16 bf16 values; shard 2: 24 f32: F32 holds most
    save_file({"a": torch.zeros(16, dtype=torch.bfloat16)}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"b": torch.zeros(4, 6)}, tmp_path / "model-00002-of-00002.safetensors")
    described = describe_weights(tmp_path)
    assert (described.quantization, described.tensor_types, described.file) == ("F32", ("F32", "BF16"), None)
    assert (described.checkpoint, described.base_model) == (None, None)  # no config.json, no model card


def test_pickle_weights_are_named_but_never_opened(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even a pickle")
    described = describe_weights(tmp_path)
    assert (described.format, described.quantization, described.tensor_types, described.file) == (
        "pytorch", None, (), "pytorch_model.bin")
    assert describe_weights(tmp_path / "nothing-here").format is None


def test_a_loaded_model_says_its_weights_and_attention(tiny_loaded, tiny_model_dir):
    identity = tiny_loaded.identity.to_dict()
    assert identity["weights"]["format"] == "safetensors" and identity["weights"]["file"] == "model.safetensors"
    assert identity["weights"]["tensor_types"] == ["F32"]  # the tiny model is saved in float32
    assert identity["attention_implementation"] == "sinkbench"


# ---- the record: schema 2.0 and 3.0 --------------------------------------------------------

SMOL = {"format": "gguf", "quantization": "Q4_1", "tensor_types": ["Q4_1", "Q8_0", "F32"],
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf", "checkpoint": "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "basename": "smollm2", "size_label": "135M", "finetune": "8k-lc100k-mix1-ep2", "base_model": None}


def test_schema_requires_the_weights_from_3_0_only():
    old = record(model="smol", seed=11)
    del old["model"]["weights"], old["model"]["attention_implementation"]
    assert "model: 'weights' is a required property" in schema_problems(old)
    old["schema_version"] = "2.0"
    assert schema_problems(old) == []  # a 2.0 record, before the fields, stays valid
    new = record(model="smol", seed=11, weights=SMOL)
    assert new["schema_version"] == "3.0" and schema_problems(new) == []
    for field, bad in (("format", "onnx"), ("quantization", "Q4 1; drop"), ("tensor_types", ["Q4_1", "Q4_1"]),
                       ("finetune", "")):
        broken = {**new, "model": {**new["model"], "weights": {**SMOL, field: bad}}}
        assert any(p.startswith(f"model.weights.{field}") for p in schema_problems(broken)), field


def test_the_report_line_names_checkpoint_format_and_quantization():
    def model(name: str, weights: dict | None) -> Model:
        made = Record.from_json(record()).model
        made.name, made.weights = name, ABSENT if weights is None else Weights.from_json(weights)
        return made

    # the checkpoint's name already holds the fine-tune (8k-lc100k-mix1-ep2): said once
    assert describe_model(model("smollm2-135m", SMOL)) == "smollm2-135m (Smollm2 135M 8k Lc100K Mix1 Ep2, GGUF Q4_1)"
    bare = model("m", {**SMOL, "checkpoint": None, "finetune": "Instruct"})
    assert describe_model(bare) == "m (fine-tune Instruct, GGUF Q4_1)"
    assert describe_model(model("old", None)) == "old"  # schema 2.0: nothing to add
    assert weights_tag(Weights.from_json(SMOL)) == "Q4_1, 8k-lc100k-mix1-ep2" and weights_tag(None) == ""
    first = render_record(record(model="smol", seed=11, weights=SMOL)).splitlines()[0]
    assert first == ("smol (Smollm2 135M 8k Lc100K Mix1 Ep2, GGUF Q4_1): LlamaForCausalLM, 1M parameters, "
                     "computed in float32, tokenizer adds <bos>: yes; suite quick 4.0")


# ---- the board ----------------------------------------------------------------------------

HOSTILE_FINETUNE = "<b>x</b>|y"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = file_board(tmp_path_factory.mktemp("weights") / "board", [
        dict(family="smollm2", model="smol-q4", revision="r1", seed=12, weights={**SMOL, "finetune": "Instruct"}),
        dict(family="gemma", model="gemma-bf16", revision="r1", seed=13,
             weights={**SMOL, "format": "safetensors", "quantization": "BF16", "tensor_types": ["BF16"],
                      "finetune": HOSTILE_FINETUNE}),
        dict(family="gemma", model="gemma-old", revision="r1", seed=14),  # plain float32 safetensors: no tag
    ])
    assert run_cli(["board", "build", "--board", folder]) == 0
    return folder


def test_index_shows_quantization_and_finetune_beside_the_name(board):
    page = (board / "site" / "index.html").read_text(encoding="utf-8")
    cells = dict(re.findall(r'<td class="model" data-sort="([^"]+)">(.*?)</td>', page))
    assert cells["smol-q4"].endswith('>smol-q4</a><small class="weights" title="weights: quantization, fine-tune">'
                                      "Q4_1, Instruct</small>")
    assert "BF16, &lt;b&gt;x&lt;/b&gt;|y</small>" in cells["gemma-bf16"]  # escaped
    assert cells["gemma-old"].endswith(">gemma-old</a>")  # nothing extra


def test_markdown_and_csv_carry_the_weights(board):
    readme = (board / "README.md").read_text(encoding="utf-8")
    assert "| smol-q4 (Q4\\_1, Instruct) |" in readme
    assert "| gemma-bf16 (BF16, &lt;b&gt;x&lt;/b&gt;\\|y) |" in readme  # the pipe cannot split the row
    assert "| gemma-old |" in readme
    header, *rows = (board / "leaderboard.csv").read_text(encoding="utf-8").splitlines()
    assert header.startswith("rank,family,model,quantization,finetune,revision,")
    by_model = {row.split(",")[2]: row.split(",")[3:5] for row in rows}
    assert by_model == {"smol-q4": ["Q4_1", "Instruct"], "gemma-bf16": ["BF16", HOSTILE_FINETUNE],
                        "gemma-old": ["", ""]}


def test_model_page_lists_the_weights(board):
    page = (board / "site" / "models" / "smollm2" / "smol-q4" / "r1.html").read_text(encoding="utf-8")
    assert '<h1>smol-q4 <small class="weights">Q4_1, Instruct</small></h1>' in page
    assert "<dt>weights</dt><dd>GGUF Q4_1 (stored types, most values first: Q4_1, Q8_0, F32)</dd>" in page
    assert "<dt>weights file</dt><dd>SmolLM2-135M-Instruct.Q4_1.gguf</dd>" in page
    assert "<dt>fine-tune</dt><dd>Instruct</dd>" in page and "<dt>attention</dt><dd>sinkbench</dd>" in page
    old = (board / "site" / "models" / "gemma" / "gemma-old" / "r1.html").read_text(encoding="utf-8")
    # Unquantized, no fine-tune: no tag beside the name, the weights listed all the same.
    assert "<h1>gemma-old</h1>" in old and "<dt>weights</dt><dd>safetensors (stored types, most values first: F32)</dd>" in old
