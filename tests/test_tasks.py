"""The tasks: each declared once and its YAML checked against the declaration, every task runs, data is
checked, ARC is repaired, generators are deterministic, the task hash covers what builds the documents."""

import importlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import lm_eval
import pytest
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml  # how lm-eval reads a task YAML: includes, !function

from conftest import make_tokenizer
from sinkbench.data import tasks as taskdata
from sinkbench.grid import catalog
from sinkbench.grid.suite import SUITES
from sinkbench.harness.backend import SinkbenchLM
from sinkbench.data.datadir import KNOWN_FILES, LONG_TEXT, data_file, resolve_data_dir
from sinkbench.errors import SinkbenchError
from sinkbench.harness.tasklist import default_tasks_dir, group_name
from sinkbench.data.synthetic import count_tokens, generate
from sinkbench.run.provenance import task_hashes

MANAGER = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False)
TASKS = sorted(MANAGER.all_subtasks)
GROUPS = sorted(MANAGER.all_groups)


def test_every_task_yaml_is_declared_and_every_declaration_has_its_yamls():
    """sinkbench.grid.catalog is the one list of tasks: lm-eval's index of tasks/ holds exactly its
    families and their variants, and one group per suite."""
    declared = [name for declaration in catalog.TASKS for name in declaration.task_names]
    assert len(declared) == len(set(declared))  # no task in two families
    assert set(TASKS) == set(declared)
    assert set(GROUPS) == {group_name(suite) for suite in SUITES.values()}
    for declaration in catalog.TASKS:
        assert declaration.kind in (catalog.ACCURACY, catalog.RETRIEVAL, catalog.PERPLEXITY), declaration.name
        assert {use.suite for use in declaration.uses} <= set(SUITES), declaration.name
        assert all((use.length is not None) == (declaration.kind == catalog.RETRIEVAL) for use in declaration.uses)


# What lm-eval must be asked for each kind, and the metric the suite reads from it.
OUTPUT_TYPES = {catalog.ACCURACY: {"multiple_choice", "loglikelihood"}, catalog.RETRIEVAL: {"loglikelihood"},
                catalog.PERPLEXITY: {"loglikelihood_rolling"}}


@pytest.mark.parametrize("task", TASKS)
def test_each_task_builds_its_documents_with_the_declared_loader(task):
    """The YAML's custom_dataset, as lm-eval resolves it (includes followed, utils.py loaded), is the
    declared loader: the function whose module the task hash covers."""
    declaration = catalog.declaration_of(task)
    assert declaration is not None, f"{task} is not declared in sinkbench.grid.catalog"
    config = load_yaml(MANAGER.task_index[task].yaml_path)
    module, function = declaration.loader.split(":")
    assert config["custom_dataset"] is getattr(importlib.import_module(module), function)
    assert declaration.primary_metric in {m["metric"] for m in config["metric_list"]}
    assert config["output_type"] in OUTPUT_TYPES[declaration.kind]


def test_a_suite_use_with_a_length_asks_for_that_length():
    for declaration in catalog.TASKS:
        for use in declaration.uses:
            if use.length is not None:
                config = load_yaml(MANAGER.task_index[use.task].yaml_path, resolve_func=False)
                assert config["metadata"]["max_seq_lengths"] == [use.length], use.task


def test_the_data_checksums_are_the_declared_files():
    assert KNOWN_FILES == catalog.data_files()
    assert set(taskdata.BOOKS.values()) <= {path for path, _ in catalog.declaration_of("sinkbench_book_ppl").data_files}
    assert LONG_TEXT in KNOWN_FILES  # the stress prefix's source
    assert all(len(sha256) == 64 for sha256 in KNOWN_FILES.values())


@pytest.mark.needs_data
def test_every_declared_data_file_is_in_the_data_directory_with_its_checksum():
    for relative in KNOWN_FILES:
        assert data_file(relative).is_file()  # data_file raises on a missing or altered file


def _hash_of(task, yaml_path, monkeypatch, loader_source):
    monkeypatch.setattr(catalog.TaskDeclaration, "source_paths", lambda self: [str(loader_source)])
    return task_hashes({task: SimpleNamespace(yaml_path=yaml_path)}, [task])[task]


def test_the_task_hash_covers_the_loader_and_every_included_yaml(tmp_path, monkeypatch):
    folder = tmp_path / "longcontext"
    shutil.copytree(default_tasks_dir() / "longcontext", folder)
    loader = tmp_path / "loader.py"
    loader.write_text("def load(): return 1\n")
    task, yaml_path = "sinkbench_kv_retrieval_512", folder / "sinkbench_kv_retrieval_512.yaml"
    first = _hash_of(task, yaml_path, monkeypatch, loader)
    assert _hash_of(task, yaml_path, monkeypatch, loader) == first
    loader.write_text("def load(): return 2\n")  # the code that builds the documents changed
    second = _hash_of(task, yaml_path, monkeypatch, loader)
    assert second != first
    base = folder / "sinkbench_passkey.yaml"  # two includes away: kv_retrieval_512 -> kv_retrieval -> passkey
    base.write_text(base.read_text().replace('doc_to_text: "{{context}}"', 'doc_to_text: "{{context}} "'))
    assert _hash_of(task, yaml_path, monkeypatch, loader) != second
    # A task sinkbench does not declare is hashed from its files alone.
    assert _hash_of("my_task", yaml_path, monkeypatch, loader) == _hash_of("my_task", yaml_path, monkeypatch, base)


def test_the_declared_loader_modules_are_found():
    for declaration in catalog.TASKS:
        assert all(Path(path).is_file() for path in declaration.source_paths()), declaration.name


@pytest.mark.needs_data
@pytest.mark.slow
def test_every_task_runs_on_a_tiny_model(tiny_model_dir):
    manager = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False,
                          metadata={"tokenizer": str(tiny_model_dir)})
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), batch_size=4)
    tasks = TASKS
    result = lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=manager, limit=2, bootstrap_iters=0)
    for task in tasks:
        metrics = result["results"][task]
        numbers = {k: v for k, v in metrics.items() if k.split(",")[0] in
                   {"acc", "acc_norm", "perplexity", "word_perplexity", "bits_per_byte"}}
        assert numbers, (task, metrics)
        assert all(v == v for v in numbers.values()), (task, numbers)  # no NaN
        assert result["higher_is_better"][task], task
    sinks = result["config"]["sinkbench"]["sink_metrics"]
    assert set(sinks) >= {"sinkbench_lambada", "sinkbench_passkey"}


@pytest.mark.parametrize("kind", ["passkey", "kv"])
def test_generators_are_deterministic_and_hit_the_length(kind):
    tokenizer = make_tokenizer(adds_bos=False)
    first = generate(kind, tokenizer, [300, 1200], n_per_length=3, seed=7)
    again = generate(kind, tokenizer, [300, 1200], n_per_length=3, seed=7)
    other = generate(kind, tokenizer, [300, 1200], n_per_length=3, seed=8)
    assert first == again and first != other
    for doc in first:
        total = count_tokens(tokenizer, doc["context"] + doc["target"])
        assert total == doc["n_tokens"]
        assert doc["length"] - 24 <= total <= doc["length"], doc["length"]
        assert doc["target"].strip() and doc["target"].strip() in doc["context"]
    assert [d["depth"] for d in first[:3]] == pytest.approx([1 / 6, 1 / 2, 5 / 6])


def test_synthetic_task_needs_a_tokenizer():
    from sinkbench.data.synthetic import model_spec

    with pytest.raises(SinkbenchError, match="tokenizer"):
        model_spec("passkey", max_seq_lengths=[256])
    assert model_spec("passkey", pretrained="smollm2-135m") == "smollm2-135m"


@pytest.mark.needs_data
def test_altered_or_missing_file_is_refused(tmp_path):
    relative = "copa/copa-dev.derived-from-bcopa.xml"
    (tmp_path / "copa").mkdir()
    altered = bytearray(data_file(relative).read_bytes())
    altered[200] ^= 1
    (tmp_path / relative).write_bytes(bytes(altered))
    with pytest.raises(SinkbenchError, match="sha256"):
        data_file(relative, tmp_path)
    with pytest.raises(SinkbenchError, match="data file missing: .*lambada_test.jsonl.*--data-dir"):
        data_file("lambada/lambada_test.jsonl", tmp_path)
    with pytest.raises(SinkbenchError, match="data directory not found"):
        resolve_data_dir(tmp_path / "nowhere")


@pytest.mark.needs_data
def test_copied_file_with_right_hash_is_accepted(tmp_path):
    relative = "copa/copa-dev.derived-from-bcopa.xml"
    (tmp_path / "copa").mkdir()
    shutil.copy(data_file(relative), tmp_path / relative)
    assert len(taskdata.copa(data_dir=tmp_path)["test"]) == 100


def test_arc_repair_on_hand_made_rows():
    rows = [
        {"query": "Question: q1", "choices": ["a", "b", "c", "d"], "gold": 2},  # numeric key '2' -> index 1
        {"query": "Question: q2", "choices": ["y", "x", "y", "z"], "gold": 1},  # padded 3-choice item
        {"query": "Question: q3", "choices": ["a", "b", "c", "d"], "gold": 3},  # 5-choice item, answer E lost
    ]
    key = [{"id": "1", "answerKey": "2"}, {"id": "2", "answerKey": "A"}, {"id": "3", "answerKey": "E"}]
    docs, dropped = taskdata.repair_arc(rows, key)
    assert dropped == ["3"]
    assert docs[0]["choices"]["text"] == ["a", "b", "c", "d"] and docs[0]["answerKey"] == "B"
    assert docs[1]["choices"]["text"] == ["x", "y", "z"] and docs[1]["answerKey"] == "A"
    assert docs[0]["question"] == "q1"


@pytest.mark.needs_data
def test_arc_on_the_real_files_follows_the_official_key():
    easy = taskdata.arc_easy()["test"]
    challenge = taskdata.arc_challenge()["test"]
    assert (len(easy), len(challenge)) == (2375, 1172)  # one 5-choice item cannot be restored
    keys = [json.loads(l) for l in data_file("arc/arc_challenge_test_answerkey.aristo.jsonl").read_text().splitlines()]
    index = {"A": 0, "B": 1, "C": 2, "D": 3, "1": 0, "2": 1, "3": 2, "4": 3}
    for doc, key in zip(challenge, keys):
        assert doc["id"] == key["id"]
        assert doc["choices"]["label"].index(doc["answerKey"]) == index[key["answerKey"]]
        assert len(set(doc["choices"]["text"])) == len(doc["choices"]["text"])


@pytest.mark.needs_data
def test_copa_matches_the_independent_superglue_copy():
    docs = taskdata.copa()["test"]
    other = [json.loads(l) for l in open(resolve_data_dir() / "copa/copa_superglue_val.llmfoundry.jsonl")]
    assert len(docs) == len(other) == 100
    for doc, row in zip(docs, other):
        correct = doc["choice1"] if doc["label"] == 0 else doc["choice2"]
        assert correct[0].lower() + correct[1:] == row["choices"][row["gold"]]
        assert row["query"].startswith(doc["premise"][:-1])


@pytest.mark.needs_data
def test_piqa_labels_match_the_independent_copy():
    docs = taskdata.piqa()["test"]
    other = [json.loads(l) for l in open(resolve_data_dir() / "piqa/piqa_val.llmfoundry.jsonl")]
    assert len(docs) == len(other) == 1838
    assert [d["label"] for d in docs] == [r["gold"] for r in other]


@pytest.mark.needs_data
def test_boolq_and_openbookqa_and_winogrande_parse():
    boolq = taskdata.boolq()["test"]
    assert len(boolq) == 3270 and set(boolq["label"]) == {0, 1}
    assert all(d["passage"] and d["question"] and not d["question"].endswith("?") for d in boolq.select(range(50)))
    obqa = taskdata.openbookqa()["test"]
    assert len(obqa) == 500 and obqa[0]["answerKey"] in "ABCD"
    wino = taskdata.winogrande(max_docs=5)["test"]
    assert len(wino) == 5 and len(wino[0]["contexts"]) == 2


@pytest.mark.needs_data
def test_book_chunks_are_consecutive_passages():
    docs = taskdata.book_chunks(n_docs=3, doc_chars=2000)["test"]
    assert [len(d["text"]) for d in docs] == [2000] * 3
    assert docs[0]["char_offset"] < docs[1]["char_offset"] < docs[2]["char_offset"]
    assert "Gutenberg" not in "".join(docs["text"])
