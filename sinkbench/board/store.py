"""Where submissions live and what a record must pass to get there (`sinkbench submit`).

A board is a folder: `submissions/<family>/<model>/<revision>.json` (the MTEB results-repository
convention: files in git, checked in CI) plus what `sinkbench board build` writes beside them.
A record is untrusted input: it is read size-limited as strict JSON (nothing in it runs), every
string is length-limited and free of control characters, its family, model and revision become
safe path components or it is refused, and nothing is written until every check has passed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from sinkbench.board.cache import CheckCache, content_digest
from sinkbench.errors import SinkbenchError
from sinkbench.files import field_path, write_bytes_atomic
from sinkbench.grid.suite import SUITES
from sinkbench.record.validate import problems
from sinkbench.record.format import dumps, read_record
from sinkbench.record.types import Model, Record, SummaryValue, as_record

DEFAULT_BOARD = Path("leaderboard")
SUBMISSIONS = "submissions"
SITE, MODELS = "site", "models"  # site/models/<family>/<model>/<revision>[.<suite>].html: one page per record
DEFAULT_SUITE = "quick"  # its records keep the plain <revision>.json name; another suite's name is added
MAX_STRING = 1000  # characters: the schema's longest free text (a note, a reason)
MAX_COMPONENT = 100  # characters of one path component
SAFE_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
ALLOWED_CONTROLS = {"\n", "\t"}  # a newline in a name is odd but harmless once escaped; the tests check that


@dataclass(frozen=True)
class Submission:
    """One record on a board, and where it is filed (relative to the board folder)."""

    path: PurePosixPath
    record: Record
    digest: str | None = None  # the sha256 of the record file's bytes, where read from one (the cache's key)

    @property
    def name(self) -> str:
        return self.record.model.name

    @property
    def family(self) -> str:
        return self.record.model.family

    @property
    def revision(self) -> str:
        return revision_label(self.record.model)

    @property
    def release_date(self) -> str | None:
        return self.record.model.release_date

    @property
    def suite(self) -> tuple[str, str]:
        suite = self.record.provenance.suite
        return suite.name, suite.version

    @property
    def device(self) -> str:
        return self.record.provenance.device

    @property
    def page(self) -> PurePosixPath:
        """Where the board's site keeps this record's page: the submission's path components under site/models."""
        _, family, model, revision = self.path.parts
        return PurePosixPath(SITE, MODELS, family, model, revision[: -len(".json")] + ".html")

    def value(self, column: str) -> float | None:
        return self.record.summary[column].value

    def entry(self, column: str) -> SummaryValue:
        """The column's summary estimate: value, stderr, ci_low, ci_high, method, n, note, mde, by_construction."""
        return self.record.summary[column]


def revision_label(model: Model) -> str | None:
    """The model's revision, else the first 12 hex digits of its weights' sha256; None if neither."""
    if model.revision:
        return model.revision
    if model.weights_sha256:
        return model.weights_sha256[:12]
    return None


def quote(text: str, limit: int = 60) -> str:
    """A record's string inside a message: quoted, escaped (no newline or terminal code gets through), short."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def path_component(text: str) -> str | None:
    """`text` as one file name: '/' becomes '__', runs of other unsafe characters '-'; None if nothing safe is left."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", text.replace("/", "__")).strip("-")
    if (len(name) > MAX_COMPONENT or not SAFE_COMPONENT.fullmatch(name) or name.endswith(".")
            or name.split(".")[0].lower() in WINDOWS_DEVICES):
        return None
    return name


# ---- checks -----------------------------------------------------------------------------


def read_untrusted(path: Path) -> dict:
    """A record file: size-limited, strict JSON (sinkbench.record.read_record), nesting bounded."""
    try:
        return read_record(Path(path))
    except RecursionError:
        raise SinkbenchError(f"{path}: JSON nested too deeply to be a record") from None


_PLAIN = (int, float, bool, type(None))


def string_problems(record) -> list[str]:
    """Strings (keys too) longer than MAX_STRING or holding control characters or lone surrogates."""
    found, stack = [], [([], record)]
    while stack:  # iterative: a deeply nested record must not overflow Python's stack here either
        parts, value = stack.pop()
        texts = []
        if isinstance(value, dict):
            texts = [(parts, key, True) for key in value]
            stack += [(parts + [key], item) for key, item in reversed(value.items())]
        elif isinstance(value, list):
            # Most of a record is lists of per-document numbers: pass those over in one sweep.
            if not all(type(item) in _PLAIN for item in value):
                stack += [(parts + [index], item) for index, item in reversed(list(enumerate(value)))]
        elif isinstance(value, str):
            texts = [(parts, value, False)]
        for where, text, is_key in texts:
            label = field_path(where) + (f" key {quote(text)}" if is_key else "")
            if len(text) > MAX_STRING:
                found.append(f"{label}: {len(text)} characters, more than the {MAX_STRING} a string may have")
            bad = next((c for c in text if c not in ALLOWED_CONTROLS and unicodedata.category(c) in ("Cc", "Cs")), None)
            if bad is not None:
                found.append(f"{label}: contains the control character U+{ord(bad):04X}")
    return found


@lru_cache(maxsize=None)
def _grid(suite_name: str):
    return SUITES[suite_name].grid()


def board_problems(record: Record) -> list[str]:
    """What the board needs beyond a valid record: complete, the current suite's own grid, a safe path."""
    found = []
    if record.status != "complete":
        reasons = "; ".join(record.missing)[:200]
        found.append(f"status: the record is partial ({reasons}); the board takes complete records only")
    suite = record.provenance.suite
    if suite.custom_grid:
        found.append("provenance.suite.custom_grid: true; the board takes records of a suite's own grid only")
    known = SUITES.get(suite.name)
    if known is None:
        found.append(f"provenance.suite.name: {quote(suite.name)} is not a suite ({', '.join(SUITES)})")
    elif known.version != suite.version:
        found.append(f"provenance.suite.version: {quote(suite.version)}, but this sinkbench runs {known.name} "
                     f"{known.version}; rerun the model with the current suite")
    else:
        conditions = {c.name: (index, c) for index, c in enumerate(record.conditions)}
        for cell in _grid(known.name):
            if cell.condition.name not in conditions:
                found.append(f"conditions: the suite's condition {cell.condition.name} is missing")
                continue
            index, condition = conditions[cell.condition.name]
            for task in cell.tasks:  # a task skipped with its reason (beyond the model's context) is complete
                if task not in condition.scores and task not in condition.skipped:
                    found.append(f"conditions[{index}].scores: no score for {task}, which the suite runs here")
    model = record.model
    if revision_label(model) is None:
        found.append("model.revision: null and model.weights_sha256 is null too; the board files a record by one of them")
    for field, text in (("family", model.family), ("name", model.name), ("revision", revision_label(model))):
        if text is not None and path_component(text) is None:
            found.append(f"model.{field}: {quote(text)} cannot become a file name (letters, digits, '.', '_', '+', "
                         f"'-'; '/' becomes '__'; at most {MAX_COMPONENT} characters, not starting with '.')")
    return found


# What a record's JSON text must show where one of its strings holds a control character or a lone surrogate:
# the character itself (JSON lets DEL and C1 stand raw; a raw surrogate only in text not read from a file), a
# \\uXXXX escape of C0, DEL, C1 or a surrogate, or a short escape of a control other than newline and tab. A
# string longer than MAX_STRING characters decoded is at least that long in the text, on one line. Conservative:
# an escaped backslash before a 'u' matches, and so, in JSON on one line, does a run of numbers between two
# strings; a match only means the exact walk runs.
_SUSPECT = re.compile(r'[\x7f-\x9f\ud800-\udfff]|\\u(?:00[0-9a-fA-F]{2}|007[fF]|[dD][89a-fA-F][0-9a-fA-F]{2})|\\[bfr]'
                      rf'|"(?:[^"\\\n]|\\.){{{MAX_STRING + 1},}}"')


def plain_strings(text: str) -> bool:
    """Whether a record's JSON text certainly holds no string that string_problems would report."""
    return _SUSPECT.search(text) is None


def record_problems(record, text: str | None = None) -> list[str]:
    """Everything `sinkbench validate` checks, then what the board adds; [] when the board takes it.
    text: the record's JSON text, when read from a file (a clean text skips the walk over every value)."""
    clean = text is not None and plain_strings(text)
    found = string_problems(record) if isinstance(record, dict) and not clean else []
    return found or problems(record) or board_problems(Record.from_json(record))


def summarise(where, found: list[str]) -> str:
    """One line: the first problems with their field paths, and how many more there are."""
    shown = "; ".join(found[:3]).replace("\n", "\\n").replace("\t", "\\t")  # a key may hold a newline
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return f"{where}: {shown}{more}"


def submission_path(record: Record | dict) -> PurePosixPath:
    """submissions/<family>/<model>/<revision>.json for the quick suite, <revision>.<suite>.json for another
    (one model at one revision may hold a record of each suite), for a record (or its JSON form) that passed
    board_problems."""
    record = as_record(record)
    model = record.model
    parts = [path_component(model.family), path_component(model.name), path_component(revision_label(model))]
    suite = record.provenance.suite.name
    name = parts[2] + ("" if suite == DEFAULT_SUITE else f".{suite}") + ".json"
    return PurePosixPath(SUBMISSIONS, parts[0], parts[1], name)


def _identity(record: Record) -> tuple:
    model = record.model
    return model.family, model.name, revision_label(model)


# ---- the board's files ------------------------------------------------------------------


def submission_files(board: Path) -> list[Path]:
    """Every .json file under the board's submissions folder, sorted by path."""
    root = Path(board) / SUBMISSIONS
    return sorted(root.rglob("*.json")) if root.is_dir() else []


def load_board(board: Path, cache: CheckCache | None = None) -> list[Submission]:
    """Every submission, each checked as `submit` checks it (once per content: a file whose bytes passed under
    this sinkbench before is in `cache`, by default the user's) and filed where its record says; one version per
    suite."""
    cache = CheckCache.default() if cache is None else cache
    submissions = []
    for file in submission_files(board):
        relative = PurePosixPath(file.relative_to(board).as_posix())
        if file.is_symlink() or not file.is_file():
            raise SinkbenchError(f"{relative}: not a plain file (links are not allowed on a board)")
        record = read_untrusted(file)
        data = file.read_bytes()
        digest = content_digest(data)
        if not cache.passed(digest):
            found = record_problems(record, data.decode("utf-8"))
            if found:
                raise SinkbenchError(summarise(relative, found))
            cache.remember(digest)
        typed = Record.from_json(record)
        expected = submission_path(typed)
        if relative != expected:
            raise SinkbenchError(f"{relative}: its record belongs at {expected} (family/model/revision[.suite])")
        submissions.append(Submission(relative, typed, digest))
    mixed = _mixed_versions(submissions)
    if mixed:
        raise SinkbenchError(f"{board}: records of several versions of suite {mixed} ({_versions(submissions)}); "
                             "a board holds one version of each suite")
    return submissions


def _mixed_versions(submissions) -> str | None:
    """The first suite the submissions hold at more than one version, else None."""
    versions: dict[str, set[str]] = {}
    for s in submissions:
        versions.setdefault(s.suite[0], set()).add(s.suite[1])
    return next((name for name, seen in sorted(versions.items()) if len(seen) > 1), None)


def _versions(submissions) -> str:
    counts: dict[tuple[str, str], int] = {}
    for s in submissions:
        counts[s.suite] = counts.get(s.suite, 0) + 1
    return ", ".join(f"{name} {version}: {n} record{'s' * (n != 1)}" for (name, version), n in sorted(counts.items()))


def _compared(submission: Submission) -> tuple:
    """What submit compares a new record against: identity and suite."""
    return _identity(submission.record), submission.suite


def _filed(board: Path) -> list[Submission]:
    """The board's records as filed, read but not re-validated (build does that, in CI)."""
    filed = []
    for file in submission_files(board):
        relative = PurePosixPath(file.relative_to(board).as_posix())
        try:
            filed.append(Submission(relative, Record.from_json(read_untrusted(file))))
        except SinkbenchError as err:  # a broken file is named here, not met as an error later
            raise SinkbenchError(f"{relative}: not a record the board can read ({err}); fix the board first") from None
    return filed


def write_output(path: Path, text: str) -> bool:
    """Write UTF-8 bytes exactly (no newline translation), atomically; False when the file already holds them."""
    data = text.encode("utf-8")
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes_atomic(data, path, mode=0o644)  # a board is meant to be read
    return True


def submit(record_file: Path, board: Path = DEFAULT_BOARD, replace: bool = False) -> PurePosixPath:
    """Check a record and file it on the board; SinkbenchError (and no change on disk) when it is refused."""
    data = read_untrusted(record_file)
    found = record_problems(data, Path(record_file).read_text(encoding="utf-8"))
    if found:
        raise SinkbenchError(summarise(record_file, found))
    record = Record.from_json(data)
    board = Path(board)
    existing = _filed(board)
    suite = record.provenance.suite
    same_suite = [s for s in existing if s.suite[0] == suite.name]
    if any(s.suite[1] != suite.version for s in same_suite):
        raise SinkbenchError(f"{record_file}: provenance.suite: the record is {suite.name} {suite.version}, "
                             f"the board holds {_versions(same_suite)}; a board holds one version of each suite")
    relative = submission_path(record)
    target = board / relative
    root = (board / SUBMISSIONS).resolve()
    if target.resolve() != root.joinpath(*relative.parts[1:]):  # a link somewhere on the way
        raise SinkbenchError(f"{relative}: the board's folders contain a link; refusing to write through it")
    twin = next((s for s in existing if s.path == relative), None)
    if target.exists() and (twin is None or target.is_symlink()):
        raise SinkbenchError(f"{relative}: exists and is not a submission; refusing to overwrite it")
    if twin is not None:
        if _identity(twin.record) != _identity(record):
            family, name, revision = _identity(twin.record)
            raise SinkbenchError(f"{relative}: already holds {quote(name)} (family {quote(family)}, revision "
                                 f"{quote(revision)}), whose file name is the same; rename one of them")
        if not replace:
            raise SinkbenchError(f"{relative}: {quote(record.model.name)} at revision "
                                 f"{quote(revision_label(record.model))} is already on the board; --replace overwrites it")
    write_output(target, dumps(data))
    return relative
