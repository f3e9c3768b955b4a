"""Real task data as lm-eval docs, in the same schema as lm-eval's own tasks of that name.

Each loader is an lm-eval `custom_dataset` function: lm-eval calls it with the task's metadata
(and `--metadata`), it returns a DatasetDict with a "test" split. Files come from the data
directory (see sinkbench.data.datadir), checked against their sha256; `source: hub` loads the original
from the Hugging Face hub instead, where the network allows.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from datasets import Dataset, DatasetDict, load_dataset

from sinkbench.data.datadir import book_text, data_file
from sinkbench.errors import SinkbenchError


def _jsonl(relative: str, data_dir) -> list[dict]:
    with open(data_file(relative, data_dir), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _as_dataset(rows: list[dict], max_docs=None):
    if max_docs is not None:
        rows = rows[: int(max_docs)]
    if not rows:
        raise SinkbenchError("task data is empty after max_docs")
    return DatasetDict({"test": Dataset.from_list(rows)})


def _from_hub(path: str, name: str | None, split: str, max_docs):
    try:
        data = load_dataset(path, name, split=split)
    except Exception as err:  # offline, renamed, ...: say which and how to avoid it
        raise SinkbenchError(f"could not load {path} ({name}) from the hub: {err}. Use the local data (source: local)") from err
    if max_docs is not None:
        data = data.select(range(min(int(max_docs), len(data))))
    return DatasetDict({"test": data})


def lambada(data_dir=None, source="local", max_docs=None, **_):
    """LAMBADA (OpenAI's detokenised test set, 5153 passages), as lambada_openai."""
    if source == "hub":
        return _from_hub("EleutherAI/lambada_openai", "default", "test", max_docs)
    return _as_dataset(_jsonl("lambada/lambada_test.jsonl", data_dir), max_docs)


def piqa(data_dir=None, source="local", max_docs=None, **_):
    """PIQA validation (1838), original files: goal, sol1, sol2 + label from valid-labels.lst."""
    if source == "hub":
        return _from_hub("baber/piqa", None, "validation", max_docs)
    rows = _jsonl("piqa/valid.jsonl", data_dir)
    labels = data_file("piqa/valid-labels.lst", data_dir).read_text().split()
    if len(labels) != len(rows):
        raise SinkbenchError(f"piqa: {len(rows)} questions but {len(labels)} labels")
    docs = [{"goal": r["goal"], "sol1": r["sol1"], "sol2": r["sol2"], "label": int(label)} for r, label in zip(rows, labels)]
    return _as_dataset(docs, max_docs)


_KEY_INDEX = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4, "1": 0, "2": 1, "3": 2, "4": 3, "5": 4}


def repair_arc(rows: list[dict], answer_key: list[dict]) -> tuple[list[dict], list[str]]:
    """ARC docs from llm-foundry's reformatted rows and AI2's official answer key.

    Known defects of the reformatted file (see PROVENANCE.md), and the repair:
    * gold is off by one where the official key is numeric ('1'..'5'): gold is taken from the
      official key instead, for every row;
    * 3-choice items were padded to 4 by putting a copy of one choice in front: when
      choices[0] reappears later, choices[1:] are the original choices, in order;
    * 5-choice items were cut to 4: where the key points past the kept choices the item
      cannot be restored and is left out (its id is returned).
    """
    if len(rows) != len(answer_key):
        raise SinkbenchError(f"arc: {len(rows)} questions but {len(answer_key)} answer keys")
    docs, dropped = [], []
    for row, key in zip(rows, answer_key):
        choices = list(row["choices"])
        if choices[0] in choices[1:]:
            choices = choices[1:]
        gold = _KEY_INDEX[key["answerKey"]]
        if gold >= len(choices):
            dropped.append(key["id"])
            continue
        labels = [chr(ord("A") + i) for i in range(len(choices))]
        question = row["query"].removeprefix("Question: ")
        docs.append({"id": key["id"], "question": question, "choices": {"text": choices, "label": labels},
                     "answerKey": labels[gold]})
    return docs, dropped


def _arc(level: str, data_dir, source, max_docs):
    if source == "hub":
        return _from_hub("allenai/ai2_arc", f"ARC-{level.capitalize()}", "test", max_docs)
    rows = _jsonl(f"arc/arc_{level}_test.llmfoundry.jsonl", data_dir)
    key = _jsonl(f"arc/arc_{level}_test_answerkey.aristo.jsonl", data_dir)
    docs, _ = repair_arc(rows, key)
    return _as_dataset(docs, max_docs)


def arc_easy(data_dir=None, source="local", max_docs=None, **_):
    return _arc("easy", data_dir, source, max_docs)


def arc_challenge(data_dir=None, source="local", max_docs=None, **_):
    return _arc("challenge", data_dir, source, max_docs)


def copa(data_dir=None, source="local", max_docs=None, **_):
    """COPA items 401-500 of the original dev XML: exactly SuperGLUE's validation split."""
    if source == "hub":
        return _from_hub("aps/super_glue", "copa", "validation", max_docs)
    root = ET.parse(data_file("copa/copa-dev.derived-from-bcopa.xml", data_dir)).getroot()
    docs = []
    for item in root.iter("item"):
        number = int(item.get("id"))
        if 401 <= number <= 500:
            docs.append({
                "premise": item.findtext("p").strip(), "choice1": item.findtext("a1").strip(),
                "choice2": item.findtext("a2").strip(), "question": item.get("asks-for"),
                "label": int(item.get("most-plausible-alternative")) - 1, "idx": number - 401,
            })
    return _as_dataset(docs, max_docs)


def winogrande(data_dir=None, source="local", max_docs=None, **_):
    """Winogrande dev (winogrande_1.1, 1267), in partial-scoring form: two contexts, one continuation."""
    if source == "hub":
        raise SinkbenchError("winogrande: the hub copy has another schema; use source: local")
    rows = _jsonl("winogrande/winogrande_dev.llmfoundry.jsonl", data_dir)
    docs = [{"contexts": r["context_options"], "continuation": r["continuation"], "label": r["gold"]} for r in rows]
    return _as_dataset(docs, max_docs)


def openbookqa(data_dir=None, source="local", max_docs=None, **_):
    """OpenBookQA test (500), as lm-eval's openbookqa: question_stem and four choices."""
    if source == "hub":
        return _from_hub("allenai/openbookqa", "main", "test", max_docs)
    rows = _jsonl("openbookqa/openbookqa_test.llmfoundry.jsonl", data_dir)
    labels = ["A", "B", "C", "D"]
    docs = [{"question_stem": r["query"], "choices": {"text": r["choices"], "label": labels[: len(r["choices"])]},
             "answerKey": labels[r["gold"]]} for r in rows]
    return _as_dataset(docs, max_docs)


def boolq(data_dir=None, source="local", max_docs=None, **_):
    """BoolQ dev (3270): passage, question (no '?'), label 0=no 1=yes, as SuperGLUE's boolq."""
    if source == "hub":
        return _from_hub("aps/super_glue", "boolq", "validation", max_docs)
    docs = []
    for number, row in enumerate(_jsonl("boolq/boolq_dev.llmfoundry.jsonl", data_dir)):
        passage, sep, question = row["query"].removeprefix("Passage: ").rpartition("\nQuestion: ")
        if not sep:
            raise SinkbenchError(f"boolq row {number}: no 'Question:' in the query")
        docs.append({"passage": passage, "question": question.rstrip("?"), "label": int(row["gold"])})
    return _as_dataset(docs, max_docs)


BOOKS = {
    "war_and_peace": "gutenberg/pg2600_war_and_peace.albert.txt",
    "moby_dick": "gutenberg/pg2701_moby_dick.utf8.derived.txt",
}


def book_chunks(data_dir=None, book="war_and_peace", n_docs=4, doc_chars=16000, max_docs=None, **_):
    """Long public-domain prose for perplexity: n_docs consecutive passages of doc_chars characters,
    each starting at a paragraph, taken from the middle of the book (away from front matter)."""
    if book not in BOOKS:
        raise SinkbenchError(f"unknown book '{book}'; choose one of {', '.join(BOOKS)}")
    text = book_text(BOOKS[book], None if data_dir is None else str(data_dir))
    cursor = len(text) // 3
    docs = []
    for number in range(int(n_docs)):
        start = text.index("\n\n", cursor) + 2
        passage = text[start : start + int(doc_chars)]
        if len(passage) < int(doc_chars):
            raise SinkbenchError(f"{book} is too short for {n_docs} passages of {doc_chars} characters")
        docs.append({"text": passage, "source": BOOKS[book], "char_offset": start, "index": number})
        cursor = start + int(doc_chars)
    return _as_dataset(docs, max_docs)
