"""Usage corners of the CLI run in-process: --format names, `compile -o` mistakes, the
compile folder's confinement and summary.txt's width."""

from __future__ import annotations

from dataclasses import replace
import os
from pathlib import Path

import pytest

from compiler.api import load_spec
from compiler.diagnostics import SpecError
from compiler.ir import keras_name
from netspec.cli import DATA_FORMATS, build_parser, main

REPO = Path(__file__).resolve().parents[2]
SPEC = str(REPO / "specs" / "rcn_4branch.yaml")


def test_format_help_names_the_readers_formats(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.data.readers import FORMATS

    assert sorted(DATA_FORMATS) == sorted(FORMATS)  # the help's list is the readers'
    for command in ("fit", "eval", "search"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "force the data format: mtfl, pts, csv_table, coco, video (csv = csv_table)" \
            in text


def test_format_accepts_reader_names_and_csv() -> None:
    parser = build_parser()
    for given, name in (("csv", "csv_table"), ("csv_table", "csv_table"), ("pts", "pts")):
        assert parser.parse_args(["fit", "x.yaml", "--format", given]).format == name


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval", "runs/x", "--format", "xml"])
    assert info.value.code == 2
    assert ("argument --format: unknown data format 'xml'; choose from video, pts, mtfl, "
            "csv_table, coco (csv = csv_table)") in capsys.readouterr().err


def test_compile_to_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    target = tmp_path / "model.keras"
    target.write_text("keep me")
    assert main(["compile", SPEC, "-o", str(target)]) == 1
    assert capsys.readouterr().err == (
        f"{target}: error: -o: expected a directory, found a file\n"
        "  hint: give -o a new or existing directory, not a file\n")
    assert target.read_text() == "keep me"
    assert main(["compile", SPEC, "-o", str(target / "sub")]) == 1
    assert f"error: -o: cannot create the directory: '{target}' is a file" \
        in capsys.readouterr().err


def test_compile_to_an_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import runtime.run_dir as rd

    def refuse(*a: object, **k: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(rd.tempfile, "mkstemp", refuse)  # root ignores chmod; fake it
    out = tmp_path / "ro"
    assert main(["compile", SPEC, "-o", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"{out}: error: -o: cannot create or write the directory: Permission denied\n"
        "  hint: give -o a directory you can write to\n")


@pytest.mark.parametrize("name", ["../escape", "a/b", ".", "..", "x/../../y"])
def test_default_compile_folder_stays_inside_build(name: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from netspec.compile_cmd import default_output_dir

    monkeypatch.chdir(tmp_path)
    spec = replace(load_spec(SPEC), name=name)
    with pytest.raises(SpecError, match=r"does not name a folder inside build/"):
        default_output_dir(spec)
    assert default_output_dir(replace(spec, name="rcn4.v2")) == Path("build/rcn4.v2")
    assert os.listdir(tmp_path) == []


@pytest.mark.keras
def test_summary_is_never_cut(tmp_path: Path) -> None:
    spec_file = REPO / "specs" / "rcn_6branch_skip.yaml"
    assert main(["compile", str(spec_file), "-o", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["model.keras", "ir.txt", "summary.txt", "spec.resolved.yaml"])  # no strays
    lines = (tmp_path / "summary.txt").read_text(encoding="utf-8").splitlines()
    assert "Connected to" in lines[2]  # the column an 80-column console drops
    graph = load_spec(spec_file).graph
    for n in (*graph.inputs, *graph.nodes):
        shape = "(" + ", ".join("None" if d is None else str(d) for d in n.out.shape) + ")"
        row = next(x for x in lines if x.startswith(f"│ {keras_name(n.name)} ("))
        assert shape in row, row  # name, class and shape whole on one line
    assert "br1__fit[0][0]" in next(x for x in lines if x.startswith("│ br1__cat ("))
