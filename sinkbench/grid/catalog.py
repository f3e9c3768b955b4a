"""Every sinkbench task, declared once: its kind, primary metric, the loader that builds its
documents, the data files it reads, and which of its variants each suite runs.

Read from here: the suites' task lists (sinkbench.grid.suite), the data checksums
(sinkbench.data.datadir), the group YAMLs (written by `sinkbench tasks --write-groups`) and the
recorded task hashes (sinkbench.run.provenance). tests/test_tasks.py checks this table against the
YAML files: every YAML task is declared, its custom_dataset is the declared loader, its metrics hold
the primary one. A variant's slice (max_docs, lengths) lives in its YAML, where plain lm-eval reads it.
Torch-free.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

# What a task's numbers mean on the board; a record's tasks[t].kind holds one of these.
ACCURACY = "accuracy"  # a mean of 0/1 outcomes that counts in the suite score
RETRIEVAL = "retrieval"  # one point of a length curve
PERPLEXITY = "perplexity"  # the long text, scored by word perplexity
OTHER = "other"  # a user's task sinkbench cannot place


@dataclass(frozen=True)
class SuiteUse:
    """One lm-eval task a suite runs: the family's own YAML or a variant YAML that slices it."""

    suite: str
    task: str
    sweep: bool = False  # also run at every stress-prefix length
    length: int | None = None  # a retrieval task's length in tokens


@dataclass(frozen=True)
class TaskDeclaration:
    name: str  # the family's base lm-eval task, the `task:` of its YAML
    kind: str
    primary_metric: str
    loader: str  # "module:function" building the documents; the YAML's custom_dataset re-exports it
    data_files: tuple[tuple[str, str], ...] = ()  # (path under the data directory, sha256)
    uses: tuple[SuiteUse, ...] = ()
    retrieval_family: str | None = None  # curve name on the board (passkey, kv)
    helpers: tuple[str, ...] = ()  # other modules whose code shapes the documents

    @property
    def task_names(self) -> tuple[str, ...]:
        """Every lm-eval task of this family that sinkbench knows: the base and the suites' variants."""
        return (self.name, *dict.fromkeys(u.task for u in self.uses if u.task != self.name))

    @property
    def needs_data(self) -> bool:
        return bool(self.data_files)

    def source_paths(self) -> list[str]:
        """Files of the modules that build this family's documents (found without importing them)."""
        paths = []
        for module in (self.loader.split(":")[0], *self.helpers):
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise LookupError(f"{self.name}: module {module} not found")
            paths.append(spec.origin)
        return paths


def _both(task_quick: str | None, task_standard: str, sweep_quick: bool = False) -> tuple[SuiteUse, ...]:
    """The quick suite's variant (if it runs one) and the standard suite's, accuracy tasks (the standard suite sweeps them all)."""
    quick = (SuiteUse("quick", task_quick, sweep=sweep_quick),) if task_quick else ()
    return (*quick, SuiteUse("standard", task_standard, sweep=True))


def _lengths(suite: str, pattern: str, lengths: tuple[int, ...]) -> tuple[SuiteUse, ...]:
    return tuple(SuiteUse(suite, pattern.format(length), length=length) for length in lengths)


QUICK_LENGTHS = (512, 1024, 2048, 4096)
STANDARD_LENGTHS = (512, 1024, 2048, 4096, 8192, 16384, 32768)
_BOOKS = (("gutenberg/pg2600_war_and_peace.albert.txt", "80fc677dca0827d3303b90ba47c67a692f9ffecf697357dd51937b09dfb45c3c"),
          ("gutenberg/pg2701_moby_dick.utf8.derived.txt", "f6125467864249ec89fdb51f3bb816a99fe756641e7c447ad003794409f7ee19"))

# Suite order is this order: families as listed, each family's uses as listed.
# Sized by power (sinkbench.record.stats): about 2,100 accuracy documents make a change of 0.03 in
# the quick suite's score detectable; LAMBADA and ARC-Easy carry its stress sweep because a distractor
# prefix moves them most for the least compute (SmolLM2 under prefix=1024: LAMBADA 0.34 -> 0.16,
# ARC-Easy 0.49 -> 0.37, PIQA 0.65 -> 0.61, at 71 and 43 ms per document).
TASKS: tuple[TaskDeclaration, ...] = (
    TaskDeclaration(
        "sinkbench_lambada", ACCURACY, "acc", "sinkbench.data.tasks:lambada",
        (("lambada/lambada_test.jsonl", "4aa8d02cd17c719165fc8a7887fddd641f43fcafa4b1c806ca8abc31fabdb226"),),
        _both("sinkbench_lambada_quick", "sinkbench_lambada_standard", sweep_quick=True)),
    TaskDeclaration(
        "sinkbench_piqa", ACCURACY, "acc", "sinkbench.data.tasks:piqa",
        (("piqa/valid.jsonl", "93503cc97c679e459b065c3d13e848282e44b2a25213985bed3e5d458abef72d"),
         ("piqa/valid-labels.lst", "b4192dc3a2a0363d9d60ccf79800cbbe2f32ebb17726efdde6970e0b8131bceb")),
        _both("sinkbench_piqa_quick", "sinkbench_piqa")),
    TaskDeclaration(
        "sinkbench_arc_easy", ACCURACY, "acc", "sinkbench.data.tasks:arc_easy",
        (("arc/arc_easy_test.llmfoundry.jsonl", "d2d12e59543acf9a5ef6079634a72b30215e36c2fd4236fff3bc855d287b87f5"),
         ("arc/arc_easy_test_answerkey.aristo.jsonl", "a4e5d41b44014c62a7c336123c63df1f1ac84f524643227e34878ac387542967")),
        _both("sinkbench_arc_easy_quick", "sinkbench_arc_easy_standard", sweep_quick=True)),
    TaskDeclaration(
        "sinkbench_arc_challenge", ACCURACY, "acc", "sinkbench.data.tasks:arc_challenge",
        (("arc/arc_challenge_test.llmfoundry.jsonl", "1ae3aeedf1951d881cbd5c2e3a31e78a1993d251479afbe4cb413b6707244636"),
         ("arc/arc_challenge_test_answerkey.aristo.jsonl", "1211b934203ac6e8acd46f998ab68bc920cddf8ba662b9648e53ef863e5fca65")),
        _both(None, "sinkbench_arc_challenge")),
    TaskDeclaration(
        "sinkbench_copa", ACCURACY, "acc", "sinkbench.data.tasks:copa",
        (("copa/copa-dev.derived-from-bcopa.xml", "1d95b1214c0bea072b08ed784468ebe2697e317e9650909c238bcb8e8ff4042b"),),
        _both(None, "sinkbench_copa")),
    TaskDeclaration(
        "sinkbench_winogrande", ACCURACY, "acc", "sinkbench.data.tasks:winogrande",
        (("winogrande/winogrande_dev.llmfoundry.jsonl", "ea1592526f3bfdd0948ed3acb1b4dfa3f83d23698917118688ee1df7f8d4b8d7"),),
        _both(None, "sinkbench_winogrande")),
    TaskDeclaration(
        "sinkbench_openbookqa", ACCURACY, "acc", "sinkbench.data.tasks:openbookqa",
        (("openbookqa/openbookqa_test.llmfoundry.jsonl", "adb2e5c7f8db810ddad4d6b2bf53dcc86dcc545499f7aafcaf42a8e179476c09"),),
        _both(None, "sinkbench_openbookqa")),
    TaskDeclaration(
        "sinkbench_boolq", ACCURACY, "acc", "sinkbench.data.tasks:boolq",
        (("boolq/boolq_dev.llmfoundry.jsonl", "454ff101e614370bb1807fe7ebbda6fdb57e794b9662cc1ccae211bf1ff626c8"),),
        _both(None, "sinkbench_boolq_standard")),
    TaskDeclaration(
        "sinkbench_passkey", RETRIEVAL, "acc", "sinkbench.data.synthetic:passkey_dataset",
        uses=(*_lengths("quick", "sinkbench_passkey_quick_{}", QUICK_LENGTHS),
              *_lengths("standard", "sinkbench_passkey_{}", STANDARD_LENGTHS)),
        retrieval_family="passkey"),
    TaskDeclaration(
        "sinkbench_kv_retrieval", RETRIEVAL, "acc", "sinkbench.data.synthetic:kv_dataset",
        uses=_lengths("standard", "sinkbench_kv_retrieval_{}", STANDARD_LENGTHS), retrieval_family="kv"),
    TaskDeclaration(
        "sinkbench_book_ppl", PERPLEXITY, "word_perplexity", "sinkbench.data.tasks:book_chunks", _BOOKS,
        (SuiteUse("quick", "sinkbench_book_ppl_quick"), SuiteUse("standard", "sinkbench_book_ppl_standard")),
        helpers=("sinkbench.data.datadir",)),  # book_text: the Gutenberg header cut, lines joined
)


def declaration_of(task: str) -> TaskDeclaration | None:
    """The family a sinkbench task belongs to, or None for a task sinkbench does not declare."""
    for declaration in TASKS:
        if task in declaration.task_names:
            return declaration
    return None


def data_files() -> dict[str, str]:
    """Every data file a declared task reads -> its sha256 (as recorded in shared/data/PROVENANCE.md)."""
    table: dict[str, str] = {}
    for declaration in TASKS:
        for path, sha256 in declaration.data_files:
            if table.setdefault(path, sha256) != sha256:
                raise ValueError(f"{path} is declared with two checksums")
    return table
