"""`sinkbench tasks`: the groups, tags and tasks in a task folder, described from their YAML files;
`sinkbench tasks --write-groups`: the suites' lm-eval groups (tasks/groups/), written from the suites.

Reads the YAML directly (no lm-eval TaskManager, no task code imported): a task's description
is the first sentence of its leading comment, else that of the YAML it `include:`s when it
reads the same data, else the first sentence of its folder's README.md.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sinkbench.errors import SinkbenchError
from sinkbench.grid.suite import SUITES, Suite

WIDTH = 100  # wrap group member lists here
DESCRIPTION_CHARS = 100  # a description longer than this is cut at a clause, else a word
DATA_KEYS = ("custom_dataset", "dataset_path", "dataset_name", "dataset_kwargs")  # what a variant must keep to inherit


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads any `!tag value` (lm-eval's `!function module.fn`) as the string "!tag value"."""


def _tagged(loader: yaml.Loader, suffix: str, node: yaml.Node) -> str:
    value = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else ""
    return f"!{suffix} {value}".strip()


_Loader.add_multi_constructor("!", _tagged)


@dataclass
class _Entry:
    path: Path
    config: dict[str, Any]  # the file's own keys
    comment: str  # its leading comment, joined into one paragraph


@dataclass
class _Described:
    name: str
    version: str
    description: str
    output_type: str = ""
    docs: str = ""
    tags: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        lines.append(stripped.lstrip("#").strip())
    return " ".join(line for line in lines if line)


def _first_sentence(text: str) -> str:
    match = re.search(r"(?<!\bet al)(?<!\be\.g)(?<!\bi\.e)\.(\s|$)", text)
    return (text[: match.start()] if match else text).strip().rstrip(":;,")


def _clauses(sentence: str) -> list[str]:
    """The sentence split after each ', ', '; ' or ': ' outside brackets and backquotes."""
    parts, depth, start, quoted = [], 0, 0, False
    for i, char in enumerate(sentence):
        if char == "`":
            quoted = not quoted
        elif not quoted and char in "([{":
            depth += 1
        elif not quoted and char in ")]}":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and char in ",;:" and sentence[i + 1: i + 2] == " ":
            parts.append(sentence[start:i])
            start = i + 1
    parts.append(sentence[start:])
    return parts


def short_description(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """First sentence of `text`, cut to `limit` characters at a clause boundary if it can be."""
    sentence = " ".join(_first_sentence(" ".join(text.split())).split())
    if len(sentence) <= limit:
        return sentence
    parts = _clauses(sentence)
    kept = parts[0]
    for part in parts[1:]:
        if len(kept) + 1 + len(part) > limit:
            break
        kept += sentence[len(kept)] + part  # the separator that stood there
    if len(kept) > limit:  # one long clause: drop its asides in brackets, then cut at a word
        kept = " ".join(re.sub(r"\s*\([^()]*\)", "", kept).split())
    if len(kept) > limit:
        kept = kept[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return kept.strip()


def _readme_description(folder: Path) -> str:
    readme = folder / "README.md"
    if not readme.is_file():
        return ""
    paragraph: list[str] = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not paragraph):
            continue
        if not stripped:
            break
        paragraph.append(stripped)
    return " ".join(paragraph)


def _load(tasks_dir: Path) -> dict[Path, _Entry]:
    entries = {}
    for path in sorted(tasks_dir.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        try:
            config = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({err})") from None
        if isinstance(config, dict):
            entries[path.resolve()] = _Entry(path, config, _leading_comment(text))
    return entries


def _chain(entry: _Entry, entries: dict[Path, _Entry]) -> list[_Entry]:
    """The entry, then the YAML it includes, then that one's, ... (lm-eval's `include:`)."""
    chain, seen = [entry], {entry.path.resolve()}
    while isinstance(chain[-1].config.get("include"), str):
        target = (chain[-1].path.parent / chain[-1].config["include"]).resolve()
        if target in seen or target not in entries:
            break
        seen.add(target)
        chain.append(entries[target])
    return chain


def _merged(chain: list[_Entry]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for entry in reversed(chain):  # included first, the task's own keys over them (shallow, as lm-eval)
        config.update(entry.config)
    return config


def _description(chain: list[_Entry]) -> str:
    for i, entry in enumerate(chain):
        if entry.comment:
            return short_description(entry.comment)
        nxt = chain[i + 1] if i + 1 < len(chain) else None
        if nxt is None or any(key in entry.config for key in DATA_KEYS):
            break  # other data than the included YAML's: its description would be wrong
    readme = _readme_description(chain[0].path.parent)
    return short_description(readme) if readme else ""


def _version(config: dict[str, Any]) -> str:
    metadata = config.get("metadata") or {}
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return f"v{version}" if version is not None else ""


def _docs(config: dict[str, Any]) -> str:
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, dict):
        return ""
    if isinstance(metadata.get("max_docs"), int):
        return f"first {metadata['max_docs']} docs"
    if isinstance(metadata.get("n_docs"), int):
        return f"{metadata['n_docs']} docs"
    lengths, per_length = metadata.get("max_seq_lengths"), metadata.get("n_per_length")
    if isinstance(lengths, list) and lengths and isinstance(per_length, int):
        shown = ", ".join(f"{n // 1024}k" if isinstance(n, int) and n % 1024 == 0 else str(n) for n in lengths)
        if len(lengths) == 1:
            return f"{per_length} docs of {shown} tokens"
        return f"{per_length * len(lengths)} docs: {per_length} at each of {shown} tokens"
    return ""


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def collect(tasks_dir: Path) -> tuple[list[_Described], list[_Described], dict[str, list[str]]]:
    """(groups, tasks, tags -> task names) found under tasks_dir, each sorted by name."""
    entries = _load(Path(tasks_dir))
    groups, tasks, tags = [], [], {}
    for entry in entries.values():
        chain = _chain(entry, entries)
        config = _merged(chain)
        if isinstance(entry.config.get("group"), str):
            members = [m if isinstance(m, str) else str(m.get("task", m)) for m in config.get("task") or []]
            groups.append(_Described(entry.config["group"], _version(config),
                                     short_description(entry.comment) if entry.comment else "", members=members))
        elif isinstance(entry.config.get("task"), str):
            described = _Described(
                name=entry.config["task"], version=_version(config), description=_description(chain),
                output_type=str(config.get("output_type", "")), docs=_docs(config), tags=_names(config.get("tag")),
            )
            tasks.append(described)
            for tag in described.tags:
                tags.setdefault(tag, []).append(described.name)
    groups.sort(key=lambda g: g.name)
    tasks.sort(key=lambda t: t.name)
    return groups, tasks, {tag: sorted(names) for tag, names in sorted(tags.items())}


def describe_tasks(tasks_dir: Path) -> str:
    """Text for `sinkbench tasks`: groups with their members and version, tags, then one line per task."""
    groups, tasks, tags = collect(Path(tasks_dir))
    known = {t.name for t in tasks} | {g.name for g in groups}
    lines = [f"Groups ({len(groups)}): --tasks NAME runs every task listed"]
    for group in groups:
        head = f"  {group.name} ({', '.join(x for x in (group.version, f'{len(group.members)} tasks') if x)})"
        lines.append(f"{head}: {group.description}" if group.description else head)
        members = ", ".join(m if m in known else f"{m} (not found)" for m in group.members)
        lines += textwrap.wrap(members, WIDTH, initial_indent="      ", subsequent_indent="      ")
    if tags:
        lines += ["", f"Tags ({len(tags)}): --tasks NAME runs every task carrying it"]
        for tag, names in tags.items():
            lines += textwrap.wrap(f"{tag} ({len(names)}): {', '.join(names)}", WIDTH,
                                   initial_indent="  ", subsequent_indent="      ")
    lines += ["", f"Tasks ({len(tasks)})"]
    name_width = max((len(t.name) for t in tasks), default=0)
    type_width = max((len(t.output_type) for t in tasks), default=0)
    for task in tasks:
        about = "; ".join(x for x in (task.description, task.docs) if x)
        lines.append(f"  {task.name:<{name_width}}  {task.output_type:<{type_width}}  {task.version:<5} {about}".rstrip())
    return "\n".join(lines) + "\n"


def default_tasks_dir() -> Path:
    """tasks/ of a source checkout, or the copy installed as the sinkbench_tasks package."""
    checkout = Path(__file__).resolve().parents[2] / "tasks"
    if (checkout / "groups" / "sinkbench_quick.yaml").is_file():  # not another package's tasks/
        return checkout
    try:
        import sinkbench_tasks  # an installed wheel's copy: looked for only without a checkout
    except ImportError:
        raise SinkbenchError("cannot find the sinkbench task configs; pass --include-path") from None
    return Path(sinkbench_tasks.__file__).parent


# A group YAML restates a suite's task list and version for plain lm-eval (`--tasks sinkbench_quick`).
# It is written from the suite, never by hand, so the two cannot disagree; tests/test_tasklist.py
# checks that the files in tasks/groups/ are what this writes.
def group_name(suite: Suite) -> str:
    return f"sinkbench_{suite.name}"


def group_yaml(suite: Suite) -> str:
    """The text of the suite's lm-eval group file."""
    head = f"The {suite.name} suite (sinkbench.grid.suite, version {suite.version}): {suite.about}".rstrip()
    lines = [
        *textwrap.wrap(head, WIDTH, initial_indent="# ", subsequent_indent="# "),
        "# sinkbench run adds the condition grid; with plain lm-eval this group runs the tasks once.",
        "# Written by `sinkbench tasks --write-groups` from sinkbench/grid/ (catalog.py, suite.py): edit those.",
        f"group: {group_name(suite)}",
        "task:",
        *(f"  - {task.name}" for task in suite.tasks),
        "metadata:",
        f"  version: {suite.version}",
    ]
    return "\n".join(lines) + "\n"


def write_groups(tasks_dir: Path) -> list[Path]:
    """Write every suite's group file under tasks_dir/groups; the files whose text changed."""
    folder = Path(tasks_dir) / "groups"
    if not folder.is_dir():
        raise SinkbenchError(f"{folder} is not a folder: pass a checkout's tasks/ folder")
    changed = []
    for suite in SUITES.values():
        path = folder / f"{group_name(suite)}.yaml"
        text = group_yaml(suite)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
