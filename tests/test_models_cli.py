"""Model loading and `sinkbench probe` on a tiny saved model: identity, refusals, bad input."""

import json
import shutil
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import make_model, make_tokenizer
from sinkbench.cli import main
from sinkbench.grid.conditions import Condition, knockout_layers
from sinkbench.grid.sequences import head_tokens
from sinkbench.errors import SinkbenchError
from sinkbench.measure.models import load_model, sha256_file


def test_identity_of_a_local_model(tiny_loaded):
    identity = tiny_loaded.identity
    assert identity.source == "local" and identity.family == "llama"
    assert (identity.n_layers, identity.n_heads, identity.n_kv_heads) == (2, 4, 2)
    assert identity.bos_token == "<bos>" and identity.adds_bos is True
    assert identity.n_parameters == sum(p.numel() for p in tiny_loaded.model.parameters())


def test_a_checkpoint_rewritten_in_place_is_a_new_model(tiny_model_dir):
    from sinkbench.harness.backend import SinkbenchLM

    first = load_model(str(tiny_model_dir))
    assert first.identity.weights_sha256 == sha256_file(tiny_model_dir / "model.safetensors")
    fingerprint = SinkbenchLM(loaded=first).cache_fingerprint
    make_model("llama", seed=1).save_pretrained(tiny_model_dir)  # new training step, same folder
    second = load_model(str(tiny_model_dir))
    assert second.identity.weights_sha256 != first.identity.weights_sha256
    assert SinkbenchLM(loaded=second).cache_fingerprint != fingerprint
    assert SinkbenchLM(loaded=load_model(str(tiny_model_dir))).cache_fingerprint == SinkbenchLM(loaded=second).cache_fingerprint


def test_pickle_weights_refused_unless_asked(tmp_path, tiny_model_dir):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(SinkbenchError, match="--allow-pickle"):
        load_model(str(folder))


def test_remote_code_refused_unless_asked(tmp_path, tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.X"}
    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(SinkbenchError, match="--trust-remote-code"):
        load_model(str(folder))


def test_unknown_model_and_missing_paths():
    with pytest.raises(SinkbenchError, match="model path not found"):
        load_model("./no/such/model")
    with pytest.raises(SinkbenchError, match="GGUF file not found"):
        load_model("/tmp/none.gguf")


def test_conditions_parse_and_heads():
    tokenizer = make_tokenizer(adds_bos=True)
    bos = tokenizer.bos_token_id
    assert head_tokens(Condition.from_args(bos="keep"), tokenizer, adds_bos=True) == (bos,)
    assert head_tokens(Condition.from_args(bos="keep"), tokenizer, adds_bos=False) == ()
    assert head_tokens(Condition.from_args(bos="drop"), tokenizer, adds_bos=True) == ()
    assert head_tokens(Condition.from_args(bos="double"), tokenizer, adds_bos=True) == (bos, bos)
    assert head_tokens(Condition.from_args(bos="replace:<eos>"), tokenizer, True) == (tokenizer.eos_token_id,)
    assert head_tokens(Condition.from_args(bos="replace:7"), tokenizer, True) == (7,)
    with pytest.raises(SinkbenchError, match="not a single token"):
        head_tokens(Condition.from_args(bos="replace:notaword"), tokenizer, True)
    assert Condition.from_args(bos="drop", prefix="64").name == "bos=drop,prefix=64"
    with pytest.raises(SinkbenchError, match="bos must be one of"):
        Condition.from_args(bos="maybe")
    with pytest.raises(SinkbenchError, match="unknown condition"):
        Condition.from_dict({"prefx": 3})
    with pytest.raises(SinkbenchError, match="needs window"):
        Condition.from_args(sinks=4)
    assert knockout_layers("0-2+5", 8) == {0, 1, 2, 5}
    assert knockout_layers("all", 3) == {0, 1, 2}
    with pytest.raises(SinkbenchError, match="has 4 layers"):
        knockout_layers("6", 4)


@pytest.fixture
def texts_file(tmp_path):
    path = tmp_path / "texts.jsonl"
    lines = ["the cat sat on the house . the dog ran to the river and saw a big fish ."] * 5
    path.write_text("\n".join(json.dumps({"text": t}) for t in lines) + "\n")
    return path


def test_probe_cli_writes_profile_and_heatmap(tiny_model_dir, texts_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["probe", "--model", str(tiny_model_dir), "--data", str(texts_file), "--T", "12", "--n", "4",
                 "--out", str(out), "--quiet"])
    assert code == 0
    document = json.loads((out / "profile.json").read_text())
    assert document["model"]["name"] == str(tiny_model_dir)
    profile = document["profile"]
    assert profile["n_sequences"] == 4 and profile["mean_tokens"] == 12
    assert profile["first_tokens"][0]["token"] == "<bos>"
    assert len(profile["alpha_by_head"]) == 2 and len(profile["alpha_by_head"][0]) == 4
    assert set(profile["sink_rate"]) == {"0.3", "0.5", "0.8"}
    heatmap = ET.fromstring((out / "alpha_heatmap.svg").read_text(encoding="utf-8"))
    cells = heatmap.findall(".//{http://www.w3.org/2000/svg}g[@class='cells']/{http://www.w3.org/2000/svg}rect")
    assert len(cells) == 2 * 4  # layers x heads, one cell each (the model page's heatmap)
    mixing = profile["overmixing"]
    assert mixing["with_bos"]["n_sequences"] == mixing["without_bos"]["n_sequences"] == 4
    assert len(mixing["with_bos"]["relative_change_by_layer"]) == 3  # embeddings + 2 layers
    assert mixing["with_bos"]["relative_change_by_layer"][0] == 0  # embeddings of later tokens never move
    printed = capsys.readouterr().out
    assert "sink rate" in printed and f"  measured: {tiny_model_dir} (safetensors F32)\n" in printed  # the weights
    main(["probe", "--model", str(tiny_model_dir), "--data", str(texts_file), "--T", "12", "--n", "4",
          "--bos", "drop", "--out", str(tmp_path / "drop"), "--quiet"])
    dropped = json.loads((tmp_path / "drop" / "profile.json").read_text())["profile"]
    assert dropped["first_tokens"][0]["token"] != "<bos>"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--data": "/nope.jsonl"}, "data file not found"),
        ({"--model": "./not-a-model"}, "model path not found"),
        ({"--model": "smolm2-135m"}, "did you mean smollm2-135m?"),
        ({"--T": "100000"}, "larger than the model's context"),
        ({"--bos": "sideways"}, "bos must be one of"),
    ],
)
def test_probe_cli_bad_input_is_one_line(change, message, tiny_model_dir, texts_file, tmp_path, capsys):
    args = {"--model": str(tiny_model_dir), "--data": str(texts_file), "--out": str(tmp_path / "o"), "--T": "8"}
    args.update(change)
    code = main(["probe", *[x for kv in args.items() for x in kv], "--quiet"])
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # loading progress bars may come before it
    assert code == 2 and last.startswith("sinkbench: error:") and message in last and "Traceback" not in err


def test_probe_cli_empty_text(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"text": "the cat"}) + "\n" + json.dumps({"text": "  "}) + "\n")
    code = main(["probe", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "o")])
    assert code == 2 and "bad.jsonl:2: empty text" in capsys.readouterr().err


# Fail fast on a model name that is neither an alias, a path nor a cached hub id.


def test_mistyped_alias_fails_at_once_offline(monkeypatch):
    from sinkbench.measure.models import load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load in (load_model, load_tokenizer):
        start = time.monotonic()
        with pytest.raises(SinkbenchError) as caught:
            load("smolm2-135m")
        assert time.monotonic() - start < 5
        message = str(caught.value)
        assert message.startswith("unknown model 'smolm2-135m'; did you mean smollm2-135m?")
        assert "HF_HUB_OFFLINE is set" in message and "\n" not in message


def test_unreachable_hub_fails_at_once(monkeypatch):
    import huggingface_hub.constants

    import sinkbench.measure.models as models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    with pytest.raises(SinkbenchError, match=r"did you mean gemma3-270m\? .*hub is unreachable"):
        load_model("gemma-270m")
    with pytest.raises(SinkbenchError, match="^unknown model 'gpt2': it is neither a bundled alias") as caught:
        load_model("gpt2")  # a real (legacy) hub id: no alias is close, so no guess
    assert "did you mean" not in str(caught.value)
    with pytest.raises(SinkbenchError) as caught:
        load_model("HuggingFaceTB/SmolLM2-135M")  # owner/name is a hub id, not a mistyped alias
    assert "did you mean" not in str(caught.value) and "hub is unreachable" in str(caught.value)


def test_hub_check_is_one_short_request(monkeypatch):
    import huggingface_hub.constants

    from sinkbench.measure.models import hub_reachable

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    assert hub_reachable(timeout=2) is False
    assert time.monotonic() - start < 3


@pytest.fixture
def hub_cache(tmp_path, tiny_model_dir, monkeypatch):
    """A Hugging Face cache holding tiny_model_dir as the hub repo tinyorg/tiny-llama."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / "models--tinyorg--tiny-llama"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("offline", [True, False])
def test_a_cached_hub_id_loads_without_the_hub(hub_cache, offline, monkeypatch):
    import huggingface_hub.constants

    import sinkbench.measure.models as models

    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # online but the hub is out of reach: the cache alone, no retries
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(models, "hub_reachable", lambda: False)
    loaded = load_model("tinyorg/tiny-llama")
    assert loaded.identity.source == "hub" and loaded.identity.n_layers == 2
    assert models.load_tokenizer("tinyorg/tiny-llama").bos_token == "<bos>"
