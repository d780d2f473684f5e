"""A corpus of hostile specs (issue 10): each case is fed to the CLI in-process and must
fail (or warn) with the exact kind of located diagnostic it names, exit 1 (0 for a
warning), never 70 ("internal error"), never a traceback, and print a bounded message.

A case is files to write (text, bytes, or a setup callable for FIFOs and links), the
argv, the expected exit code and a regex the first stderr line must match (the
`file:line:col: error:` form, with the file the error belongs to).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import time

import pytest

from netspec.cli import main

TINY = """version: 1
name: tiny
inputs:
  image: {shape: [16, 16, 1]}
layers:
  - {name: head, op: conv2d, in: [image], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
"""


def laughs(levels: int = 9, head: str = "version: 1\n") -> str:
    rows = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    rows += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return head + "\n".join(rows) + "\n"


def merge_bomb() -> str:
    rows = ["m0: &m0 {a: 1, b: 2}"]
    rows += [f"m{i}: &m{i} {{<<: [*m{i - 1}], x{i}: *m{i - 1}, y{i}: *m{i - 1}}}"
             for i in range(1, 30)]
    return "version: 1\n" + "\n".join(rows) + "\n"


def with_layers(layers: str, output: str) -> str:
    return ("version: 1\nname: h\ninputs: {image: {shape: [16, 16, 1]}}\nlayers:\n" + layers
            + f"outputs:\n  o: {output}\n")


CONV = "  - {name: h, op: conv2d, in: [image], filters: 5, kernel_size: 1%s}\n"


def _fifo(tmp: Path) -> None:
    os.mkfifo(tmp / "pipe.yaml")


def _zero_link(tmp: Path) -> None:
    (tmp / "zero.yaml").symlink_to("/dev/zero")


def _dir_base(tmp: Path) -> None:
    (tmp / "dir.yaml").mkdir()


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes]
    argv: tuple[str, ...]
    first: str  # regex for the first stderr line
    rc: int = 1
    setup: Callable[[Path], None] | None = None
    also: tuple[str, ...] = field(default=())  # more regexes, anywhere in stderr
    not_in: tuple[str, ...] = field(default=())  # text that must not be printed


CASES = [
    # --- alias and expression bombs ---------------------------------------------------
    Case("billion_laughs", {"s.yaml": laughs()}, ("check", "s.yaml"),
         r"^s\.yaml:\d+:\d+: error: YAML aliases expand this value to [\d,]+ values"),
    Case("merge_key_bomb", {"s.yaml": merge_bomb()}, ("check", "s.yaml"),
         r"^s\.yaml:\d+:\d+: error: YAML aliases expand"),
    Case("recursive_alias", {"s.yaml": "version: 1\nparams: &p {a: [*p]}\n"},
         ("check", "s.yaml"), r"^s\.yaml:2:\d+: error: a YAML alias refers to the anchor"),
    Case("alias_bomb_in_set", {"s.yaml": TINY},
         ("check", "s.yaml", "--set", "train.x=" + laughs(7, "{").replace("\n", ", ")
          .rstrip(", ").replace("l0: ", "l0: ") + "}"),
         r"^--set train\.x=.*: error: YAML aliases expand"),
    Case("string_doubling_params",
         {"s.yaml": "version: 1\nparams:\n  p0: xxxxxxxxxxxxxxxx\n" + "".join(
             f"  p{i}: \"${{p{i - 1} + p{i - 1}}}\"\n" for i in range(1, 40))},
         ("check", "s.yaml"), r"^s\.yaml:\d+:\d+: error: string of [\d,]+ characters"),
    Case("integer_squaring_params",
         {"s.yaml": "version: 1\nparams:\n  p0: 99999999999\n" + "".join(
             f"  p{i}: \"${{p{i - 1} * p{i - 1}}}\"\n" for i in range(1, 40))},
         ("check", "s.yaml"), r"^s\.yaml:\d+:\d+: error: number too large"),
    Case("float_overflow_to_inf",
         {"s.yaml": TINY.replace("name: tiny", "name: tiny\nparams: {lr: \"${"
                                 + " * ".join(["1000000000000000.0"] * 22) + "}\"}")},
         ("check", "s.yaml"), r"^s\.yaml:3:\d+: error: result is not a finite number"),
    Case("nan_learning_rate", {"s.yaml": TINY}, ("check", "s.yaml", "--set",
                                                  "train.learning_rate=.nan"),
         r"^--set train\.learning_rate=\.nan: error: \.nan is not a finite number"),
    Case("inf_layer_param", {"s.yaml": TINY.replace("kernel_size: 1", "kernel_size: 1, "
                                                                      "l2: .inf")},
         ("check", "s.yaml"), r"^s\.yaml:6:\d+: error: \.inf is not a finite number"),
    # --- names and paths ---------------------------------------------------------------
    Case("name_traversal_compile", {"s.yaml": TINY.replace("name: tiny", "name: ../../escape")},
         ("compile", "s.yaml"), r"^s\.yaml:2:1: error: bad spec name: found the string "
                                r"'\.\./\.\./escape'"),
    Case("name_absolute", {"s.yaml": TINY.replace("name: tiny", "name: /tmp/x")},
         ("check", "s.yaml"), r"^s\.yaml:2:1: error: bad spec name"),
    Case("name_nul_byte", {"s.yaml": TINY.replace("name: tiny", 'name: "a\\0b"')},
         ("check", "s.yaml"), r"^s\.yaml:2:1: error: bad spec name: found the string 'a\\x00b'"),
    Case("name_set_slash", {"s.yaml": TINY}, ("check", "s.yaml", "--set", "name=a/b"),
         r"^--set name=a/b: error: bad spec name"),
    Case("name_list", {"s.yaml": TINY.replace("name: tiny", "name: [a, b]")},
         ("check", "s.yaml"), r"^s\.yaml:2:1: error: bad spec name: found a list"),
    # --- extends and odd files ---------------------------------------------------------
    Case("extends_etc_passwd", {"s.yaml": "extends: /etc/passwd\n"}, ("check", "s.yaml"),
         r"^s\.yaml:1:1: error: 'extends' must name a YAML spec file", not_in=("root:",)),
    Case("extends_traversal", {"s.yaml": "extends: ../../../../../../etc/shadow\n"},
         ("check", "s.yaml"), r"^s\.yaml:1:1: error: "),
    Case("extends_fifo", {"s.yaml": "extends: pipe.yaml\n"}, ("check", "s.yaml"),
         r"^s\.yaml:1:1: error: 'extends' must name a YAML spec file .*not a regular file",
         setup=_fifo),
    Case("extends_dev_zero_link", {"s.yaml": "extends: zero.yaml\n"}, ("check", "s.yaml"),
         r"^s\.yaml:1:1: error: .*not a regular file", setup=_zero_link),
    Case("extends_directory", {"s.yaml": "extends: dir.yaml\n"}, ("check", "s.yaml"),
         r"^s\.yaml:1:1: error: .*not a regular file", setup=_dir_base),
    Case("extends_secret_text", {"s.yaml": "extends: notes.yaml\n",
                                 "notes.yaml": "my notes\napi_key=SECRET123\n" * 50},
         ("check", "s.yaml"), r"^notes\.yaml:1:1: error: a spec must be a mapping of "
                              r"sections, found plain text \(first line: 'my notes'\)",
         not_in=("SECRET123",)),
    Case("extends_not_a_string", {"s.yaml": "extends: {a: 1}\n"}, ("check", "s.yaml"),
         r"^s\.yaml:1:1: error: 'extends' must be a file path string"),
    Case("spec_is_dev_zero", {}, ("check", "zero.yaml"),
         r"^zero\.yaml: error: expected a spec file, found a device, pipe or socket",
         setup=_zero_link),
    Case("spec_is_fifo", {}, ("check", "pipe.yaml"),
         r"^pipe\.yaml: error: expected a spec file, found a device", setup=_fifo),
    Case("binary_garbage", {"s.yaml": b"\xff\xfe\x00\x01garbage\x80"}, ("check", "s.yaml"),
         r"^s\.yaml: error: spec file is not UTF-8 text"),
    Case("nul_in_text", {"s.yaml": "version: 1\nname: a\x00b\n"}, ("check", "s.yaml"),
         r"^s\.yaml:2:\d+: error: character #x0000 is not allowed"),
    # --- huge text ---------------------------------------------------------------------
    Case("ten_mb_op_name", {"s.yaml": TINY.replace("op: conv2d", "op: " + "x" * 10_000_000)},
         ("check", "s.yaml"), r"^s\.yaml:6:5: error: layer 'head': unknown op 'x+… "
                              r"\(10,000,002 chars\)$"),
    Case("two_mb_key", {"s.yaml": TINY + "y" * 2_000_000 + ": 1\n"}, ("check", "s.yaml"),
         r"^s\.yaml:10:\d+: error: YAML syntax error: could not find expected ':'"),
    Case("ten_mb_set_value", {"s.yaml": TINY},
         ("check", "s.yaml", "--set", "train.optimizer=" + "z" * 10_000_000),
         r"^--set train\.optimizer=z+… \([\d,]+ chars\): error: "),
    Case("five_thousand_broken_layers",
         {"s.yaml": "version: 1\ninputs: {image: {shape: [8, 8, 1]}}\nlayers:\n" + "".join(
             f"  - {{name: l{i}, op: conv2d, in: [image], filters: x, kernel_size: 1}}\n"
             for i in range(5000))
          + "outputs: {o: l1}\n"},
         ("check", "s.yaml"), r"^s\.yaml:4:\d+: error: layer 'l0' \(conv2d\): param 'filters'",
         also=(r"\.\.\. and 4,900 more \(fix the ones above first\)",)),
    # --- run sections that are not mappings --------------------------------------------
    Case("set_train_5", {"s.yaml": TINY}, ("check", "s.yaml", "--set", "train=5"),
         r"^--set train=5: error: section 'train' must be a mapping of settings, found the "
         r"int 5"),
    Case("data_list", {"s.yaml": TINY + "data: [1, 2]\n"}, ("check", "s.yaml"),
         r"^s\.yaml:10:1: error: section 'data' must be a mapping of settings, found a list"),
    Case("eval_string", {"s.yaml": TINY + "eval: fast\n"}, ("fit", "s.yaml"),
         r"^s\.yaml:10:1: error: section 'eval' must be a mapping"),
    Case("search_number", {"s.yaml": TINY}, ("search", "s.yaml", "--set", "search=3"),
         r"^--set search=3: error: section 'search' must be a mapping"),
    Case("inputs_list", {"s.yaml": TINY.replace("inputs:\n  image: {shape: [16, 16, 1]}",
                                                "inputs: [image]")},
         ("show", "s.yaml"), r"^s\.yaml:3:1: error: `inputs:` must map names to their "
                             r"settings, found a list"),
    Case("outputs_number", {"s.yaml": TINY}, ("expand", "s.yaml", "--set", "outputs=5"),
         r"^--set outputs=5: error: `outputs:` must map names"),
    Case("data_augment_number", {"s.yaml": TINY}, ("check", "s.yaml", "--set",
                                                    "data.augment=5"),
         r"^--set data\.augment=5: error: data: key 'augment'"),
    # --- losses on the wrong kind of output -------------------------------------------
    Case("nll_on_raw_logits", {"s.yaml": TINY.replace("from: prob", "from: head")},
         ("check", "s.yaml"), r"^s\.yaml:9:3: error: output 'heatmaps' \(loss "
                              r"spatial_softmax_nll\): reads probabilities .* gives unbounded"),
    Case("nll_from_logits_on_softmax",
         {"s.yaml": TINY.replace("loss: spatial_softmax_nll",
                                 "loss: spatial_softmax_nll, args: {from_logits: true}")},
         ("graph", "s.yaml", "-o", "g.html"), r"^s\.yaml:9:3: error: .*applies the spatial "
                                              r"softmax itself"),
    Case("xent_on_sigmoid", {"s.yaml": with_layers(CONV % ", activation: sigmoid",
                                                   "{from: h, loss: sigmoid_xent}")},
         ("check", "s.yaml"), r"^s\.yaml:\d+:3: error: output 'o' \(loss sigmoid_xent\): "
                              r"applies the sigmoid itself"),
    Case("l2_on_softmax", {"s.yaml": TINY.replace("spatial_softmax_nll", "heatmap_l2")},
         ("check", "s.yaml"), r"^s\.yaml:9:3: error: .*regresses unnormalised Gaussian"),
    Case("coords_on_softmax", {"s.yaml": with_layers(
        "  - {name: f, op: flatten, in: [image]}\n"
        "  - {name: d, op: dense, in: [f], units: 10, activation: softmax}\n",
        "{from: d, loss: coord_l2}")},
         ("check", "s.yaml"), r"^s\.yaml:\d+:3: error: .*regresses coordinates"),
    Case("nll_on_sumnet_branch_without_softmax", {"s.yaml": with_layers(
        CONV % "" + "  - {name: up, op: upsample2d, in: [h], size: 2}\n"
        "  - {name: s, op: weighted_sum, in: [up, up]}\n",
        "{from: s, loss: spatial_softmax_nll}")},
         ("check", "s.yaml"), r"^s\.yaml:\d+:3: error: .*'s' \(weighted_sum of logits\)"),
    # --- data vs input ---------------------------------------------------------------------
    Case("data_size_vs_input", {"s.yaml": TINY}, ("check", "s.yaml", "--set", "data.size=64"),
         r"^--set data\.size=64: error: data\.size is 64, but input 'image' is 16x16",
         also=(r"input 'image' is float32\[\?, 16, 16, 1\], declared at s\.yaml:4:3",)),
    Case("data_channels_vs_input", {"s.yaml": TINY + "data:\n  channels: 3\n"},
         ("check", "s.yaml"), r"^s\.yaml:11:3: error: data\.channels is 3, but input 'image' "
                              r"has 1 channel"),
    Case("non_square_input", {"s.yaml": TINY.replace("[16, 16, 1]", "[16, 32, 1]")
                              + "data: {dataset: synthetic}\n"},
         ("check", "s.yaml"), r"^s\.yaml:4:3: error: input 'image' is .* only makes square"),
    # --- numbers that check but cannot be built: a warning, exit 0 -------------------------
    Case("trillion_params", {"s.yaml": with_layers(
        "  - {name: f, op: flatten, in: [image]}\n"
        "  - {name: d, op: dense, in: [f], units: 4000000000}\n"
        "  - {name: e, op: dense, in: [d], units: 10}\n", "{from: e, loss: coord_l2}")},
         ("check", "s.yaml"), r"^s\.yaml:6:5: warning: the weights need [\d.]+ TB", rc=0),
    Case("huge_kernel", {"s.yaml": TINY.replace("kernel_size: 1", "kernel_size: 1000000000")},
         ("show", "s.yaml"), r"^s\.yaml:6:5: warning: the weights need [\d.]+ PB", rc=0),
    Case("huge_input_activations", {"s.yaml": TINY.replace("[16, 16, 1]", "[30000, 30000, 1]")},
         ("check", "s.yaml"), r"^s\.yaml:\d+:\d+: warning: one example's activations need", rc=0),
    # --- misc ------------------------------------------------------------------------------
    Case("version_float", {"s.yaml": TINY.replace("version: 1", "version: 1.0")},
         ("check", "s.yaml"), r"^s\.yaml:1:1: error: unsupported spec version 1\.0"),
    Case("emoji_layer_name", {"s.yaml": TINY.replace("name: head", "name: h😀").replace(
        "in: [head]", "in: [h😀]")}, ("check", "s.yaml"), r"^s\.yaml:6:\d+: error: bad layer "
                                                         r"name 'h😀'"),
    Case("diff_with_a_bomb", {"a.yaml": TINY, "b.yaml": laughs()}, ("diff", "a.yaml", "b.yaml"),
         r"^b\.yaml:\d+:\d+: error: YAML aliases expand", rc=2),  # diff(1): 2 = trouble
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_spec(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "a" / "b"  # room for '../..' to land inside tmp_path
    work.mkdir(parents=True)
    for name, content in case.files.items():
        path = work / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    if case.setup:
        case.setup(work)
    monkeypatch.chdir(work)
    monkeypatch.delenv("NETSPEC_DEBUG", raising=False)
    t0 = time.perf_counter()
    rc = main(list(case.argv))
    elapsed = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert rc != 70, err[:2000]
    assert "Traceback" not in err and "internal error" not in err
    assert rc == case.rc, err[:2000]
    first = err.splitlines()[0] if err else ""
    assert re.match(case.first, first), first[:500]
    for pattern in case.also:
        assert re.search(pattern, err), (pattern, err[:2000])
    for text in case.not_in:
        assert text not in err and text not in out
    assert len(err) < 30_000  # quotes are capped; long lists of errors are cut
    assert elapsed < 10.0, f"took {elapsed:.1f} s"
    if case.id == "name_traversal_compile":
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "s.yaml"]
        assert not (tmp_path / "escape").exists()


def test_corpus_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)
