"""`--workers HOST:PORT,... --task-index I` and TF_CONFIG: the cluster a multi-worker fit
joins, and the clear errors for a wrong one (no TensorFlow needed)."""

from __future__ import annotations

import json

import pytest

from compiler.diagnostics import SpecError
from netspec.cli import main
from runtime.train.devices import tf_config, worker_role


def test_workers_become_tf_config_and_worker_0_is_the_chief(
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tf_config("127.0.0.1:2001, 127.0.0.1:2002", 1)
    assert json.loads(raw) == {"cluster": {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]},
                               "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", raw)
    role = worker_role("multi_worker")
    assert role is not None and (role.index, role.count, role.chief) == (1, 2, False)
    assert role.text() == "worker 1/2 (127.0.0.1:2002)"
    monkeypatch.setenv("TF_CONFIG", tf_config("h:1,h:2", 0))
    assert worker_role("multi_worker").chief  # type: ignore[union-attr]
    assert worker_role("default") is None  # TF_CONFIG alone changes nothing


@pytest.mark.parametrize(("workers", "index", "message"), [
    ("127.0.0.1", 0, "expected HOST:PORT,HOST:PORT"),
    ("h:1,h:99999", 0, "expected HOST:PORT,HOST:PORT"),
    ("h:1,h:1", 0, "lists an address twice"),
    ("h:1,h:2", 2, r"--task-index must be 0..1 with 2 --workers, found 2"),
    ("h:1,h:2", None, "found None"),
])
def test_bad_workers_are_refused(workers: str, index: int | None, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        tf_config(workers, index)


@pytest.mark.parametrize(("raw", "message"), [
    (None, "TF_CONFIG is not set"),
    ("{not json", "not a cluster description"),
    (json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]},
                 "task": {"type": "chief", "index": 0}}), "clusters of workers only"),
    (json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 3}}),
     "task worker 3"),
])
def test_bad_tf_config_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str | None,
                                  message: str) -> None:
    if raw is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(SpecError, match=message):
        worker_role("multi_worker")


def test_fit_with_a_bad_task_index_exits_1_before_tensorflow(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(["fit", "specs/rcn_4branch.yaml", "--workers", "127.0.0.1:1,127.0.0.1:2",
                 "--task-index", "5"])
    err = capsys.readouterr().err
    assert code == 1 and "--task-index must be 0..1" in err and "Traceback" not in err
