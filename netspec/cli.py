"""The `netspec` command line: thin commands over the compiler and runtime APIs.

Exit codes: 0 ok, 1 spec/data errors (printed as file:line diagnostics), 2 usage.
This is the only module that reads argv/environment and prints. Spec-only commands
(check, show, expand, ops, graph, diff) never import TensorFlow.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import os
from pathlib import Path
import sys
import time

from compiler.diagnostics import InternalError, SourceLoc, SpecError
from runtime.quiet_tf import import_tensorflow

EXAMPLES = """\
examples:
  netspec check specs/rcn_6branch.yaml
  netspec show specs/rcn_6branch.yaml --set branches=5
  netspec compile specs/rcn_6branch.yaml -o build/rcn6
  netspec fit specs/rcn_6branch.yaml -o runs/rcn6 --data ../shared/data/mtfl
  netspec fit specs/rcn_6branch.yaml --backend jax --mixed-precision   # no TensorFlow needed
  netspec eval runs/rcn6 --json       # the held-out split of the data it trained on
  netspec predict runs/rcn6 face.jpg -o predictions/
  netspec predict runs/lgcn group.jpg -o faces/ --multi-face
  netspec search specs/is_net.yaml -o searches/is --data ../shared/data/mtfl
  netspec export runs/rcn6 -o exports/rcn6_tflite --format tflite
  netspec doctor                      # versions, devices, numerics self-test: for bug reports
"""


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec YAML file (e.g. specs/rcn_6branch.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (NAME=V) or a section value (train.epochs=3); "
                        "repeatable")


def _load(args: argparse.Namespace):  # noqa: ANN202 - compiler.api.Spec
    from compiler.api import load_spec

    spec = load_spec(args.spec, args.overrides)
    for warning in spec.warnings:  # e.g. weights that need > 1 GB; the command goes on
        print(warning, file=sys.stderr)
    return spec


def _use_backend(args: argparse.Namespace) -> str:
    """Select the Keras backend (--backend, KERAS_BACKEND, else tensorflow) before Keras is
    imported; TensorFlow is imported (quietly) only when it is the backend."""
    from runtime.backend import select_backend

    name = select_backend(getattr(args, "backend", None))
    if name == "tensorflow":
        import_tensorflow()
    return name


def cmd_check(args: argparse.Namespace) -> int:
    from compiler.format import param_summary
    from compiler.ops import DEFAULT_OPS
    from netspec.sections import check_sections

    t0 = time.perf_counter()
    spec = _load(args)
    check_sections(spec)
    params, flops = param_summary(spec.graph, DEFAULT_OPS)
    outs = ", ".join(f"{o.name} {spec.graph.node(o.source).out}" for o in spec.graph.outputs)
    print(f"{spec.file}: ok: {len(spec.graph.nodes)} layers, {params:,} params, "
          f"{flops / 1e6:.1f} MFLOPs/example; outputs: {outs} "
          f"({(time.perf_counter() - t0) * 1000:.0f} ms)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from compiler.format import format_graph
    from compiler.ops import DEFAULT_OPS

    print(format_graph(_load(args).graph, DEFAULT_OPS), end="")
    return 0


def cmd_expand(args: argparse.Namespace) -> int:
    from compiler.api import expanded_document
    from compiler.dump import dump_spec

    print(dump_spec(expanded_document(_load(args))), end="")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from compiler.opdoc import describe_op, list_ops
    from compiler.ops import DEFAULT_OPS
    from runtime.export.op_support import export_summary, support_line

    if args.name:
        opdef = DEFAULT_OPS.get(args.name)
        if opdef is None:
            from compiler.diagnostics import did_you_mean

            print(f"netspec: unknown op '{args.name}'; "
                  f"{did_you_mean(args.name, DEFAULT_OPS.names(), 'known ops')}", file=sys.stderr)
            return 2
        print(describe_op(opdef), end="")
        print(support_line(args.name))
    else:
        print(list_ops(DEFAULT_OPS), end="")
        print(export_summary(DEFAULT_OPS.names()))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from compiler.ops import DEFAULT_OPS
    from compiler.render import to_dot, to_html

    spec = _load(args)
    families = {op.name: op.family for op in DEFAULT_OPS}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".html":
        out.write_text(to_html(spec.graph, families))
    elif suffix == ".dot":
        out.write_text(to_dot(spec.graph, families))
    elif suffix in (".svg", ".png", ".pdf"):
        dot = shutil.which("dot")
        if dot is None:
            print("netspec: Graphviz `dot` is not installed, so .svg/.png/.pdf cannot be drawn; "
                  "write .html (needs nothing) or .dot instead (apt-get install graphviz)",
                  file=sys.stderr)
            return 2
        subprocess.run([dot, f"-T{suffix[1:]}", "-o", str(out)], input=to_dot(
            spec.graph, families).encode(), check=True)
    else:
        print(f"netspec: unknown graph format '{suffix}'; use .dot, .html, .svg, .png or .pdf",
              file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Exit codes as diff(1): 0 identical, 1 different, 2 trouble (a spec does not load)."""
    from compiler.api import SECTIONS, load_spec
    from compiler.diff import diff_graphs, diff_sections
    from compiler.spec_files import as_plain

    try:
        a = load_spec(args.a, args.overrides)
        b = load_spec(args.b, args.overrides)
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 2
    lines = diff_graphs(a.graph, b.graph) + diff_sections(
        *({s: as_plain(spec.sections[s]) for s in SECTIONS if s in spec.sections}
          for spec in (a, b)))
    if not lines:
        print("specs are identical (graph and data/train/eval/search sections)")
        return 0
    print(f"--- {args.a}\n+++ {args.b}")
    print("\n".join(lines))
    return 1


def cmd_compile(args: argparse.Namespace) -> int:
    from netspec.compile_cmd import compile_to_dir, default_output_dir
    from runtime.run_dir import ensure_output_dir

    spec = _load(args)
    out = Path(args.output) if args.output else default_output_dir(spec)
    ensure_output_dir(out, "-o" if args.output else "the default output folder")
    from runtime.train.model_memory import check_fits_in_memory

    check_fits_in_memory(spec, None)  # a spec that checks fine may still not fit
    import_tensorflow()  # after the spec's own checks, which need no TensorFlow
    t0 = time.perf_counter()
    written = compile_to_dir(spec, out, mixed_precision=args.mixed_precision)
    print(f"compiled {spec.file} -> {out}/ ({', '.join(p.name for p in written)}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from runtime.train.fit import fit_spec

    spec = _load(args)
    if args.workers is not None or args.task_index is not None:  # a multi-worker fit
        from runtime.train.devices import tf_config

        os.environ["TF_CONFIG"] = tf_config(args.workers or "", args.task_index)
        args.strategy = "multi_worker"
    _use_backend(args)  # after the spec's own checks, which need no Keras
    run_dir = Path(args.output or Path("runs") / spec.name)
    fit_spec(spec, run_dir, data=args.data, data_format=args.format, resume=args.resume,
             overrides=args.overrides, device=_device_options(args),
             explicit_dir=args.output is not None)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from runtime.evaluate.score_run import bad_eval_overrides

    bad = bad_eval_overrides(args.overrides)
    if bad:
        print(f"netspec eval: --set {bad[0]}: eval takes only data.KEY=VALUE and "
              "eval.KEY=VALUE (params and train.* define the trained model; train a new run "
              "to change them)", file=sys.stderr)
        return 2
    _use_backend(args)
    from runtime.evaluate.score_run import evaluate_run

    evaluate_run(Path(args.run), data=args.data, data_format=args.format,
                 normalizer=args.normalizer, as_json=args.json, split_name=args.split,
                 shape_model=args.shape_model, overrides=args.overrides)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if args.multi_face and args.detect:
        raise SpecError.at(SourceLoc("--detect"), "--detect and --multi-face are two ways of "
                                                  "finding faces: pick one")
    if args.multi_face:
        return cmd_predict_multiface(args)
    given = [f for f, v in (("--peak-threshold", args.peak_threshold),
                            ("--min-score", args.min_score)) if v is not None]
    if given:
        raise SpecError.at(SourceLoc("<command line>"),
                           f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} only "
                           "for --multi-face", hint="add --multi-face")
    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise SpecError.at(SourceLoc("--min-confidence"), f"must be in [0, 1], found "
                                                          f"{args.min_confidence}",
                           hint="scores are mean peak-to-mass ratios of the heat maps, in [0, 1]")
    _use_backend(args)
    from runtime.predict.predict_files import MIN_CONFIDENCE, predict_run

    out = Path(args.output)
    index = predict_run(Path(args.run), [Path(p) for p in args.images], out,
                        box=args.box, video=args.video, detect=args.detect,
                        min_confidence=MIN_CONFIDENCE if args.min_confidence is None
                        else args.min_confidence)
    if args.video:
        n = sum(c["frames"] for c in index["clips"])
        what = f"{n} frames in {len(index['clips'])} clip(s)"
        low = sum(c["low_confidence"] for c in index["clips"])
    else:
        what = f"{len(index['images'])} image(s)"
        low = sum(e["low_confidence"] for e in index["images"])
    flagged = f", {low} low-confidence (see the warnings)" if low else ""
    print(f"predicted {what}{flagged} -> {out / 'predictions.json'}")
    errors = index["errors"]
    if errors:
        print(f"netspec predict: {len(errors)} image(s) could not be predicted:",
              file=sys.stderr)
        for e in errors:
            print(f"  {e['image']}: {e['error']}", file=sys.stderr)
        return 1
    return 0


def cmd_predict_multiface(args: argparse.Namespace) -> int:
    """LGCN section 4.3: every face in each image, no detector (runtime/predict/multiface.py)."""
    from runtime.predict.multiface import DetectOptions, predict_multiface_run

    if args.min_confidence is not None:
        raise SpecError.at(SourceLoc("<command line>"), "--min-confidence is not for "
                                                        "--multi-face", hint="use --min-score")
    opts = DetectOptions()
    for flag, name, value in (("--peak-threshold", "threshold", args.peak_threshold),
                              ("--min-score", "min_score", args.min_score)):
        if value is not None:
            if value < 0.0:
                raise SpecError.at(SourceLoc("<command line>"),
                                   f"{flag} must be >= 0, found {value}")
            opts = replace(opts, **{name: value})
    _use_backend(args)
    done = predict_multiface_run(Path(args.run), [Path(p) for p in args.images],
                                 Path(args.output), opts)
    for path, n in done:
        print(f"{path}: {n} face(s)")
    print(f"wrote <image>.faces.json and <image>.faces.png for {len(done)} image(s) -> "
          f"{args.output}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run as SavedModel / TFLite / ONNX + manifest.json (runtime/export/)."""
    from runtime.export.command import check_options

    try:
        check_options(args.format, args.quantize, args.calibration)
    except SpecError as e:  # a flag combination: a usage error
        print(str(e), file=sys.stderr)
        return 2
    import_tensorflow()
    from runtime.export.command import export_run

    r = export_run(Path(args.run), Path(args.output), args.format, quantize=args.quantize,
                   calibration=args.calibration)
    pts = "" if r.points_diff is None else f", points {r.points_diff:.2g} px"
    print(f"exported {args.format}{' ' + args.quantize if args.quantize else ''} -> "
          f"{r.artefact} (+ {r.manifest.name}); max |export - keras| on fixed inputs: "
          f"{r.max_abs_diff:.2g}{pts}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from runtime.search.command import search_spec

    spec = _load(args)
    _use_backend(args)  # after the spec's own checks, which need no Keras
    search_spec(spec, Path(args.output or Path("searches") / spec.name), data=args.data,
                data_format=args.format, workers=args.workers, executor=args.executor,
                address=args.address, overrides=args.overrides)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from netspec.doctor import report

    return report(print)


def _device_options(args: argparse.Namespace) -> dict[str, object]:
    return {"mixed_precision": args.mixed_precision, "xla": args.xla,
            "strategy": args.strategy}


# The readers' format names (runtime.data.readers.FORMATS, which imports NumPy: too slow to
# load for every command's help; tests/cli/test_cli_usage.py keeps the two equal) and the
# short names --format also takes.
DATA_FORMATS = ("mtfl", "pts", "csv_table", "coco", "video")
FORMAT_ALIASES = {"csv": "csv_table"}


def _data_format(value: str) -> str:
    """--format's type: a reader's name (or an alias of one), else a usage error."""
    from runtime.data.readers import FORMATS

    name = FORMAT_ALIASES.get(value, value)
    if name not in FORMATS:
        aliases = ", ".join(f"{a} = {n}" for a, n in FORMAT_ALIASES.items())
        raise argparse.ArgumentTypeError(
            f"unknown data format '{value}'; choose from {', '.join(FORMATS)} ({aliases})")
    return name


def _run_args(p: argparse.ArgumentParser, default: str = "the spec's data.dataset") -> None:
    p.add_argument("--data", help="dataset path (MTFL list, .pts folder, CSV, COCO json, video "
                                  f"folders) or 'synthetic'; default: {default}")
    p.add_argument("--format", type=_data_format, metavar="NAME",
                   help=f"force the data format: {', '.join(DATA_FORMATS)} "
                        f"({', '.join(f'{a} = {n}' for a, n in FORMAT_ALIASES.items())}); "
                        "default: detected from --data")


def _backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else tensorflow); runs "
                        "trained on one backend evaluate and resume on another")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netspec", description="Declarative YAML layer graphs compiled to Keras 3 models, "
                                    "trained and evaluated on face landmarks.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="netspec 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="parse, expand, check and type a spec (no TensorFlow)")
    _spec_args(p)
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("show", help="print the typed IR: layers, shapes, params, FLOPs")
    _spec_args(p)
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("expand", help="print the spec with extends merged and macros unrolled")
    _spec_args(p)
    p.set_defaults(func=cmd_expand)
    p = sub.add_parser("ops", help="list ops, or document one: netspec ops conv2d")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_ops)
    p = sub.add_parser("graph", help="draw the graph: -o FILE.dot|.html (|.svg|.png with Graphviz)")
    _spec_args(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_graph)
    p = sub.add_parser("diff", help="what differs between two specs' graphs")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("compile", help="compile to DIR/model.keras (+ ir.txt, summary.txt, "
                                       "spec.resolved.yaml)")
    _spec_args(p)
    p.add_argument("-o", "--output", help="output directory (default: build/<spec name>)")
    p.add_argument("--mixed-precision", action="store_true", help="float16 compute, float32 heads")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("fit", help="train a spec; writes checkpoints, model.keras, metrics.jsonl")
    _spec_args(p)
    _run_args(p)
    p.add_argument("-o", "--output", help="run directory (default: runs/<spec name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--xla", action="store_true", help="compile train steps with XLA (jit)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"),
                   default="default", help="tf.distribute strategy (multi_worker: the "
                   "cluster in TF_CONFIG)")
    p.add_argument("--workers", metavar="HOST:PORT,...",
                   help="multi-worker training: every worker's address, the same list on "
                        "each (sets TF_CONFIG; worker 0 is the chief, which writes the run)")
    p.add_argument("--task-index", type=int, metavar="I",
                   help="this process's index in --workers")
    p.set_defaults(func=cmd_fit)
    _backend_arg(p)

    p = sub.add_parser("eval", help="evaluate a run: NME, FR@0.08/0.10, AUC@0.08, CED plot")
    p.add_argument("run", help="run directory written by `netspec fit`")
    _run_args(p, "the data the run trained on (RUN/state.json)")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="'val' (default): the held-out rows the run validated on; 'train': "
                        "the faces it trained on; 'all': every face (train and all warn that "
                        "training faces are scored)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a data.* or eval.* value of the run's spec (e.g. "
                        "data.limit=500, eval.refine=com); repeatable")
    p.add_argument("--normalizer", default=None,
                   help="inter_ocular | inter_pupil | rcn_eye_centre | box | box_diag "
                        "(default: the spec's eval.normalizer)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--shape-model", action="store_true",
                   help="also score after fitting the PCA shape model (LGCN; default: the "
                        "spec's eval.shape_model)")
    p.set_defaults(func=cmd_eval)
    _backend_arg(p)

    p = sub.add_parser("predict", help="landmarks for images: JSON + overlay PNGs")
    p.add_argument("run", help="a run folder, or an export folder (netspec export)")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--box", help="crop x0,y0,x1,y1 in source pixels, made square on its centre "
                                 "(default: the whole image padded to a square)")
    p.add_argument("--video", action="store_true",
                   help="each folder is one clip of frames in natural order: OUT/<clip>.json")
    p.add_argument("--min-confidence", type=float, default=None, metavar="C",
                   help="flag a face whose score (mean peak-to-mass ratio of its heat maps; "
                        "the peak probability for spatial-softmax outputs) is below C as "
                        "low_confidence (default 0.1)")
    p.add_argument("--detect", action="store_true",
                   help="find faces with OpenCV's Haar cascade (pip extra 'export') and predict "
                        "each in the crop the model was trained on: OUT/<image>.json 'faces'")
    p.add_argument("--multi-face", action="store_true",
                   help="find every face without a face detector (image pyramid + PCA "
                        "shape model; needs RUN/shape_model.npz)")
    p.add_argument("--peak-threshold", type=float, default=None, metavar="T",
                   help="--multi-face: a candidate landmark is a local heat-map maximum of at "
                        "least T (default 0.25)")
    p.add_argument("--min-score", type=float, default=None, metavar="S",
                   help="--multi-face: keep a face whose mean heat-map value at its fitted "
                        "landmarks is at least S (default 0.35; lower finds more faces, and "
                        "more false ones)")
    p.set_defaults(func=cmd_predict)
    _backend_arg(p)

    p = sub.add_parser("export", help="a run as SavedModel, TFLite or ONNX with its "
                                      "normalisation and point decoding, + manifest.json")
    p.add_argument("run")
    p.add_argument("-o", "--output", required=True, help="export folder (artefact + manifest)")
    p.add_argument("--format", required=True, choices=("savedmodel", "tflite", "onnx"))
    p.add_argument("--quantize", choices=("float16", "int8"), default=None,
                   help="float16 weights (tflite), or int8 weights and activations "
                        "(tflite, onnx)")
    p.add_argument("--calibration", metavar="DATA", default=None,
                   help="--quantize int8: data set (as fit --data, or 'synthetic') whose "
                        "first 200 training crops calibrate the int8 ranges")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("search", help="polynomial-regression search over spec params")
    _spec_args(p)
    _run_args(p)
    p.add_argument("-o", "--output", help="study directory (default: searches/<spec name>)")
    p.add_argument("--workers", type=int, default=None,
                   help="trials run at once, each in its own process (default: search.workers)")
    p.add_argument("--executor", choices=("local", "process", "ray"), default=None,
                   help="local/process: a process pool on this machine; ray: a Ray cluster "
                        "(default: search.executor)")
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.set_defaults(func=cmd_search)
    _backend_arg(p)

    p = sub.add_parser("doctor", help="versions, devices and a numerics + training self-test "
                                      "(paste its output into bug reports)")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ INFO/WARNING/ERROR banner (CUDA probing on CPU machines, CPU
    # feature notes) drowns netspec's own output; TF_CPP_MIN_LOG_LEVEL=0 brings it back.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as e:
        print(str(e), file=sys.stderr)
        n = len(e.diagnostics)
        if n > 1:
            print(f"{n} errors", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nnetspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (InternalError, Exception) as e:  # noqa: BLE001 - last-resort report
        if os.environ.get("NETSPEC_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            print(f"netspec: internal error: {type(e).__name__}: {e}\n"
                  "  this is a netspec bug, not your spec; rerun with NETSPEC_DEBUG=1 for the "
                  "traceback and report it", file=sys.stderr)
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
