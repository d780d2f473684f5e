"""Reading spec files: `extends:` inheritance and `--set KEY=VALUE` overrides.

Pre: a path to a YAML spec. Post: one merged `LocatedDict` document whose values
still carry the file:line they came from (base or child), with overrides applied.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from compiler.diagnostics import (
    DiagnosticSink,
    SourceLoc,
    SpecError,
    clip,
    describe_value,
    did_you_mean,
)
from compiler.yaml_loader import LocatedDict, LocatedList, load_yaml, load_yaml_value

TOP_LEVEL_KEYS = ("version", "name", "description", "extends", "params", "inputs",
                  "templates", "modules", "layers", "outputs", "data", "train", "eval",
                  "search")
SUPPORTED_VERSIONS = (1,)
# Sections whose entries are named things: a child's `name: null` removes the base's entry.
_NAMED_SECTIONS = ("inputs", "outputs", "templates", "modules")


MAX_SPEC_BYTES = 32 * 2**20  # specs are a few kB; a bigger "spec" is a wrong file
SPEC_SUFFIXES = (".yaml", ".yml")


def read_text(path: str | Path, *, what: str = "spec file") -> str:
    """The UTF-8 text of a regular file of at most MAX_SPEC_BYTES, else a SpecError.

    Devices, FIFOs and folders are refused before they are opened (`/dev/zero` would
    never end, a FIFO would block)."""
    p = Path(path)
    loc = SourceLoc(str(path))
    if not p.exists():
        raise SpecError.at(loc, f"{what} not found",
                           hint="check the path; specs live in specs/, e.g. "
                                "specs/rcn_6branch.yaml")
    if p.is_dir():
        raise SpecError.at(loc, f"expected a {what}, found a directory")
    if not p.is_file():
        raise SpecError.at(loc, f"expected a {what}, found a device, pipe or socket")
    size = p.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError.at(loc, f"{what} is {size:,} bytes; specs are small text files "
                                f"(at most {MAX_SPEC_BYTES:,} bytes)",
                           hint="is this the right file?")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError.at(loc, f"{what} is not UTF-8 text") from None
    except OSError as e:
        raise SpecError.at(loc, f"cannot read the {what}: {e.strerror or e}") from None


def load_document(text: str, file: str, _chain: tuple[str, ...] = ()) -> LocatedDict:
    """Parse one spec text and resolve its `extends:` chain (child wins)."""
    doc = load_yaml(text, file)
    if doc is None:
        raise SpecError.at(SourceLoc(file, 1, 1), "the spec is empty",
                           hint="a spec starts with `version: 1` and has `inputs:`, "
                                "`layers:` and `outputs:`")
    if not isinstance(doc, LocatedDict):
        raise SpecError.at(getattr(doc, "loc", SourceLoc(file, 1, 1)),
                           "a spec must be a mapping of sections, found "
                           + ("a list" if isinstance(doc, list) else _first_line(doc, text)),
                           hint="start the file with `version: 1`")
    _check_top_level(doc)
    base_ref = doc.get("extends")
    if base_ref is None:
        return doc
    if not isinstance(base_ref, str):
        raise SpecError.at(doc.loc_of("extends"), "'extends' must be a file path string")
    base_path = (Path(file).parent / base_ref) if file not in ("<string>", "<spec>") \
        else Path(base_ref)
    key = str(base_path.resolve())
    if key in _chain or key == str(Path(file).resolve()):
        raise SpecError.at(doc.loc_of("extends"), f"'extends' cycle through {base_ref}",
                           hint="a spec cannot (indirectly) extend itself")
    if not base_path.exists():
        raise SpecError.at(doc.loc_of("extends"), f"base spec '{base_ref}' not found",
                           hint=f"paths are relative to {Path(file).parent}/")
    if base_path.suffix.lower() not in SPEC_SUFFIXES or not base_path.is_file():
        raise SpecError.at(doc.loc_of("extends"),
                           f"'extends' must name a YAML spec file (.yaml or .yml), found "
                           f"'{base_ref}'" + ("" if base_path.is_file() else
                                              " (not a regular file)"),
                           hint="a spec extends another spec, e.g. extends: _rcn.yaml")
    base = load_document(read_text(base_path, what="base spec"), str(base_path),
                         (*_chain, str(Path(file).resolve())))
    merged = merge_documents(base, doc)
    merged.pop("extends", None)
    return merged


def _first_line(value: Any, text: str) -> str:
    """A scalar document, shown by the file's first line only: the file may be anything
    (`extends: /etc/passwd`) and an error must not print it."""
    if not isinstance(value, str):
        return describe_value(value)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"plain text (first line: {clip(first, 80)!r})"


def _check_top_level(doc: LocatedDict) -> None:
    sink = DiagnosticSink()
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            sink.error(doc.loc_of(key), f"unknown top-level section '{key}'",
                       hint=did_you_mean(str(key), TOP_LEVEL_KEYS, "sections"))
    if "version" not in doc and "extends" not in doc:
        sink.error(SourceLoc(doc.loc.file, 1, 1), "missing 'version'",
                   hint="add `version: 1` as the first line")
    elif "version" in doc and (type(doc["version"]) is not int
                               or doc["version"] not in SUPPORTED_VERSIONS):
        sink.error(doc.loc_of("version"),
                   f"unsupported spec version {doc['version']!r}",
                   hint=f"this netspec reads version {', '.join(map(str, SUPPORTED_VERSIONS))}")
    sink.raise_if_any()


def merge_documents(base: LocatedDict, child: LocatedDict) -> LocatedDict:
    """Deep-merge `child` over `base`: mappings merge (child wins), lists such as `layers`
    replace, and in the named sections (inputs, outputs, templates, modules) `name: null` removes
    the base's entry. Neither argument is modified."""
    out = _merge(base, child)
    for section in _NAMED_SECTIONS:
        named = child.get(section)
        if isinstance(named, LocatedDict) and isinstance(base.get(section), LocatedDict):
            for key, value in named.items():
                if value is None:
                    out[section].pop(key, None)  # a fresh mapping made by _merge
    return out


def _merge(base: LocatedDict, child: LocatedDict) -> LocatedDict:
    out = LocatedDict(base, loc=child.loc)
    out.key_locs = dict(base.key_locs)
    for key, value in child.items():
        old = base.get(key)
        if isinstance(value, LocatedDict) and isinstance(old, LocatedDict):
            out[key] = _merge(old, value)
        else:
            out[key] = value
        out.key_locs[key] = child.loc_of(key)
    return out


def parse_override(text: str) -> tuple[str, Any, SourceLoc]:
    """'train.epochs=3' -> ('train.epochs', 3, loc). Values are read as YAML."""
    loc = SourceLoc(f"--set {text}")
    if "=" not in text:
        raise SpecError.at(loc, "expected KEY=VALUE",
                           hint="e.g. --set branches=5 or --set train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise SpecError.at(loc, f"bad override key '{key}'",
                           hint="keys are dotted paths: a param name, params.NAME or SECTION.KEY")
    try:
        value = load_yaml_value(raw) if raw.strip() else ""
    except SpecError as e:  # name the --set, not "<--set>:1:1"
        raise SpecError([replace(d, loc=loc) for d in e.diagnostics]) from None
    return key, value, loc


def apply_overrides(doc: LocatedDict, overrides: list[str] | tuple[str, ...]) -> LocatedDict:
    """Apply `--set` overrides: a bare name or `params.NAME` sets a declared param;
    `SECTION.KEY...` sets a value in data/train/eval/search/outputs/inputs."""
    if not overrides:
        return doc
    out = merge_documents(LocatedDict(loc=doc.loc), doc)
    params = out.get("params")
    sink = DiagnosticSink()
    for text in overrides:
        try:
            key, value, loc = parse_override(text)
        except SpecError as e:
            sink.extend(e)
            continue
        parts = key.split(".")
        if parts[0] == "params" or (len(parts) == 1 and parts[0] not in TOP_LEVEL_KEYS):
            name = parts[-1] if parts[0] == "params" else parts[0]
            if len(parts) > 2 or (parts[0] == "params" and len(parts) != 2):
                sink.error(loc, f"bad param override '{key}'", hint="use --set NAME=VALUE")
                continue
            if not isinstance(params, LocatedDict) or name not in params:
                declared = list(params) if isinstance(params, dict) else []
                sink.error(loc, f"unknown param '{name}'",
                           hint=did_you_mean(name, declared, "declared params"))
                continue
            params = _set_path(out, ["params", name], value, loc)
            continue
        if parts[0] not in ("data", "train", "eval", "search", "outputs", "inputs", "name"):
            sink.error(loc, f"cannot override '{key}'",
                       hint="override a param (NAME=...) or a value in data/train/eval/search/"
                            "outputs/inputs; layers are changed through params")
            continue
        _set_path(out, parts, value, loc)
    sink.raise_if_any()
    return out


def _set_path(doc: LocatedDict, parts: list[str], value: Any, loc: SourceLoc) -> Any:
    """Set doc[p0][p1]...= value, copying the mappings on the way (inputs stay intact)."""
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        fresh = LocatedDict(child if isinstance(child, dict) else {}, loc=loc)
        if isinstance(child, LocatedDict):
            fresh.loc, fresh.key_locs = child.loc, dict(child.key_locs)
        node[part] = fresh
        node = fresh
    node[parts[-1]] = value
    node.key_locs[parts[-1]] = loc
    return doc.get("params")


def as_plain(value: Any) -> Any:
    """Strip location wrappers (for dumping and comparisons)."""
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, LocatedList)):
        return [as_plain(v) for v in value]
    return value
