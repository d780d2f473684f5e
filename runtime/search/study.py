"""The study log DIR/study.jsonl: one JSON line per finished trial, so a search resumes.

Each line is written with one write, flushed and fsynced; a line cut short by a crash
is dropped (and trimmed off before the next append). The last record of a trial wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
from typing import Any, Literal, get_args

from compiler.diagnostics import SourceLoc, SpecError

STUDY_FILE = "study.jsonl"
# initial: the random design; replicate: the first initial point with another seed (noise);
# proposal: the surrogate's minimum; explore: the feasible point farthest from all measured
# ones, trained instead of a proposal that repeats a measured point
Kind = Literal["initial", "replicate", "proposal", "explore"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial. `predicted` (f_hat at the point) and `degree` are set for
    proposals and explorations; `objective` is None for failed trials."""

    trial: int
    point: Mapping[str, float]
    objective: float | None
    kind: Kind
    status: Literal["ok", "failed"]
    seed: int
    seconds: float
    run_dir: str | None = None
    predicted: float | None = None
    degree: int | None = None
    error: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.objective is not None

    def to_json(self) -> str:
        data = asdict(self)
        data["point"] = dict(self.point)
        data["metrics"] = dict(self.metrics)
        return json.dumps(data, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRecord:
        point = {str(k): float(v) for k, v in dict(data["point"]).items()}
        obj = data.get("objective")
        if data["kind"] not in KINDS or data["status"] not in ("ok", "failed"):
            raise ValueError(f"bad kind/status {data['kind']!r}/{data['status']!r}")
        return cls(
            trial=int(data["trial"]), point=point, objective=None if obj is None else float(obj),
            kind=data["kind"], status=data["status"], seed=int(data.get("seed", 0)),
            seconds=float(data.get("seconds", 0.0)), run_dir=data.get("run_dir"),
            predicted=data.get("predicted"), degree=data.get("degree"), error=data.get("error"),
            metrics=dict(data.get("metrics") or {}))


def trial_dir(study_dir: str | os.PathLike[str], trial: int) -> Path:
    """The conventional run directory of a trial: DIR/trials/007."""
    return Path(study_dir) / "trials" / f"{trial:03d}"


def _parse(path: Path, data: bytes) -> tuple[list[TrialRecord], int]:
    """Records and the byte length of the intact prefix.

    A line without its newline is a cut-off write and is dropped, as is a final
    newline-terminated line that does not parse; a bad line before others is damage.
    """
    records: list[TrialRecord] = []
    *complete, _tail = data.split(b"\n")
    good = 0
    for lineno, line in enumerate(complete, start=1):
        if line.strip():
            try:
                records.append(TrialRecord.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                if all(not rest.strip() for rest in complete[lineno:]):
                    break
                raise SpecError.at(SourceLoc(str(path), lineno),
                                   f"not a trial record ({exc}); the study log is damaged",
                                   hint="move the file aside to start the search over") from None
        good += len(line) + 1
    return records, good


def read_study(directory: str | os.PathLike[str]) -> list[TrialRecord]:
    """Every intact record in DIR/study.jsonl, in file order (empty when absent)."""
    path = Path(directory) / STUDY_FILE
    return _parse(path, path.read_bytes())[0] if path.exists() else []


class StudyLog:
    """Appends trial records to DIR/study.jsonl; opening it trims a cut-off last line."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STUDY_FILE
        self.directory.mkdir(parents=True, exist_ok=True)
        self.records: list[TrialRecord] = []
        if self.path.exists():
            data = self.path.read_bytes()
            self.records, good = _parse(self.path, data)
            if good < len(data):
                with open(self.path, "r+b") as fh:
                    fh.truncate(good)
                    fh.flush()
                    os.fsync(fh.fileno())

    def finished(self) -> dict[int, TrialRecord]:
        """The last record of each trial id."""
        return {r.trial: r for r in self.records}

    def append(self, record: TrialRecord) -> None:
        line = (record.to_json() + "\n").encode()
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self.records.append(record)
