"""A YAML loader that knows where every value came from and refuses YAML traps.

Plain PyYAML keeps the last of two duplicate keys and reads on/off/yes/no as
booleans; both silently change a spec, so both are errors here. Mappings come back
as `LocatedDict` (with the location of the mapping and of each key). Parsing uses
libyaml when present (fast); a syntax error is re-parsed by PyYAML's pure-Python
parser, whose messages are the ones users see.

Aliases (`*name`) are bounded before anything is constructed: a 1 KB "billion laughs"
file nests anchors so that its values expand to 10⁹ copies, which every later pass
(substitution, merging, dumping) would walk. The composed node graph is measured in
linear time and a file whose aliases add more than MAX_ALIAS_EXPANSION values fails.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from compiler.diagnostics import SourceLoc, SpecError

_AMBIGUOUS_BOOL = re.compile(r"^(yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$")


class LocatedDict(dict):
    """A dict that remembers its own location and each key's location."""

    loc: SourceLoc
    key_locs: dict[Any, SourceLoc]

    def __init__(self, *args: Any, loc: SourceLoc | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.loc = loc or SourceLoc("<spec>")
        self.key_locs = {}

    def loc_of(self, key: Any) -> SourceLoc:
        return self.key_locs.get(key, self.loc)


class LocatedList(list):
    """A list that remembers its location and each item's location."""

    loc: SourceLoc
    item_locs: list[SourceLoc]

    def __init__(self, *args: Any, loc: SourceLoc | None = None) -> None:
        super().__init__(*args)
        self.loc = loc or SourceLoc("<spec>")
        self.item_locs = []

    def loc_of(self, index: int) -> SourceLoc:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


def loc_of(value: Any, default: SourceLoc) -> SourceLoc:
    return getattr(value, "loc", default)


def _loc(mark: yaml.Mark, file: str | None = None) -> SourceLoc:
    return SourceLoc(file or mark.name, mark.line + 1, mark.column + 1)


class _Located:
    """Loader mixin: the spec's file name, and bad scalars (`!!int x`, a 5000-digit
    number, .nan/.inf) reported at their location instead of as a bare ValueError or a
    silently NaN training."""

    spec_file = "<spec>"

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, OverflowError) as e:
            text = repr(node.value) if isinstance(node.value, str) else "this value"
            raise SpecError.at(_node_loc(self, node),
                               f"cannot read {text[:40]} as {node.tag.rsplit(':', 1)[-1]}: {e}"
                               ) from None
        if type(value) is int and not -(2**63) <= value < 2**64:
            raise SpecError.at(_node_loc(self, node), "number too large (more than 64 bits)")
        if type(value) is float and not math.isfinite(value):
            raise SpecError.at(_node_loc(self, node), f"{node.value} is not a finite number",
                               hint="a NaN or infinite rate, weight or size trains NaN; give a "
                                    "number (or null where a key means 'none')")
        return value


class _SpecLoader(_Located, yaml.SafeLoader):
    """SafeLoader + duplicate-key errors + locations on every mapping and list."""


_CSafeLoader = getattr(yaml, "CSafeLoader", None)  # absent without libyaml


class _FastSpecLoader(_Located, _CSafeLoader or yaml.SafeLoader):  # type: ignore[misc]
    """The same loader on libyaml's parser (its marks carry no file name)."""


def _node_loc(loader: Any, node: yaml.Node) -> SourceLoc:
    return _loc(node.start_mark, loader.spec_file)


def _mapping(loader: _SpecLoader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)
    out = LocatedDict(loc=_node_loc(loader, node))
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise SpecError.at(_node_loc(loader, key_node), "a mapping key must be a plain value",
                               hint="write `name: value`") from None
        if key in first_line:
            raise SpecError.at(_node_loc(loader, key_node), f"duplicate key '{key}'",
                               hint=f"first set on line {first_line[key]}; YAML would "
                                    "silently keep only the last one")
        first_line[key] = key_node.start_mark.line + 1
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_locs[key] = _node_loc(loader, key_node)
    return out


def _sequence(loader: _SpecLoader, node: yaml.SequenceNode) -> LocatedList:
    out = LocatedList(loc=_node_loc(loader, node))
    for item in node.value:
        out.append(loader.construct_object(item, deep=True))
        out.item_locs.append(_node_loc(loader, item))
    return out


def _scalar_str(loader: _SpecLoader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    if not node.style and _AMBIGUOUS_BOOL.match(value):  # plain: None (PyYAML), '' (libyaml)
        raise SpecError.at(
            _node_loc(loader, node), f"ambiguous YAML value '{value}'",
            hint=f"YAML 1.1 reads '{value}' as a boolean: write true or false, "
                 f"or quote it (\"{value}\") if you mean the string")
    return value


for _cls in (_SpecLoader, _FastSpecLoader):
    # Only true/false are booleans; the YAML 1.1 words become errors in _scalar_str.
    _cls.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
    }
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"))
    # YAML 1.1 wants a dot in a float ('1.0e-3'); '1e-3' (YAML 1.2, Python) is one too
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
    _cls.add_constructor("tag:yaml.org,2002:str", _scalar_str)


MAX_ALIAS_EXPANSION = 100_000  # values aliases may add beyond the file's own (specs: ~100)


def _parse(loader_cls: type, text: str, file: str) -> Any:
    loader = loader_cls(text)
    loader.spec_file = loader.name = file
    try:
        node = loader.get_single_node()  # composition shares aliased nodes: no blow-up yet
        if node is None:
            return None
        if "&" in text:  # no anchor, no alias
            check_alias_expansion(node, file)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_alias_expansion(root: yaml.Node, file: str,
                          budget: int = MAX_ALIAS_EXPANSION) -> None:
    """Raise a located SpecError when aliases expand the node graph by more than `budget`
    values, or an alias sits inside its own anchor. Iterative: O(nodes + edges)."""
    size: dict[int, int] = {}  # expanded value count of every finished node
    on_path = {id(root)}
    distinct = 1
    stack: list[list[Any]] = [[root, _children(root), 0, 1]]  # node, kids, next kid, count
    while stack:
        frame = stack[-1]
        node, kids, i = frame[0], frame[1], frame[2]
        if i < len(kids):
            frame[2] += 1
            kid = kids[i]
            if id(kid) in size:
                frame[3] += size[id(kid)]  # an alias: its value again
            elif id(kid) in on_path:
                raise SpecError.at(_loc(kid.start_mark, file),
                                   "a YAML alias refers to the anchor it sits in",
                                   hint="the value would contain itself forever; copy the "
                                        "part you need instead of the alias")
            else:
                on_path.add(id(kid))
                distinct += 1
                stack.append([kid, _children(kid), 0, 1])
            continue
        stack.pop()
        on_path.discard(id(node))
        count = size[id(node)] = frame[3]
        if count > distinct + budget:
            raise SpecError.at(
                _loc(node.start_mark, file),
                f"YAML aliases expand this value to {count:,} values (aliases may add at "
                f"most {budget:,})",
                hint="an anchor (&name) repeated through aliases (*name) is copied at every "
                     "use; nested, that grows exponentially (a 'billion laughs' file). "
                     "Write the values out, or use params/templates to repeat layers")
        if stack:
            stack[-1][3] += count


# libyaml's composer recurses in C and crashes the process on ~30,000-deep nesting;
# PyYAML's raises RecursionError instead, so only modest texts take the fast path.
_FAST_MAX_NESTING = 5_000


def _nesting_bound(text: str) -> int:
    """An upper bound on YAML nesting depth: every level needs a line or an opener."""
    return sum(text.count(c) for c in "\n[{-?")


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML text; any syntax problem becomes a located SpecError."""
    if _CSafeLoader is not None and _nesting_bound(text) < _FAST_MAX_NESTING:
        try:
            return _parse(_FastSpecLoader, text, file)
        except RecursionError:
            raise _too_deep(text, file) from None
        except yaml.YAMLError:
            pass  # reported below with PyYAML's clearer messages
    try:
        return _parse(_SpecLoader, text, file)
    except SpecError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = _loc(mark, file) if mark else SourceLoc(file)
        problem = e.problem or "invalid YAML"
        context = f" ({e.context})" if e.context else ""
        if e.context and e.context_mark and e.problem_mark \
                and e.context_mark.line != e.problem_mark.line:
            context = f" ({e.context} that starts on line {e.context_mark.line + 1})"
        hint = "check indentation and that every `key: value` has a space after the colon"
        if "flow" in (e.context or "") and e.context_mark:
            hint = (f"a '[' or '{{' opened on line {e.context_mark.line + 1} is not closed "
                    "(or a ',' is missing)")
        if "tab" in problem or "'\\t'" in problem:
            hint = "YAML forbids tabs for indentation: use spaces"
        raise SpecError.at(loc, f"YAML syntax error: {problem}{context}", hint=hint) from None
    except yaml.reader.ReaderError as e:  # a control character, bad encoding
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise SpecError.at(SourceLoc(file, line, col),
                           f"character #x{e.character:04x} is not allowed in YAML",
                           hint="remove it (binary data or a stray control character)") from None
    except yaml.YAMLError as e:
        raise SpecError.at(SourceLoc(file), f"YAML error: {e}") from None
    except RecursionError:
        raise _too_deep(text, file) from None


def _too_deep(text: str, file: str) -> SpecError:
    return SpecError.at(SourceLoc(file, _deepest_line(text), 1), "YAML nests too deeply",
                        hint="a spec needs a few levels of nesting, not hundreds")


def _deepest_line(text: str) -> int:
    """The line where `[`/`{` brackets nest deepest (where a runaway nesting sits)."""
    depth = best = 0
    line = best_line = 1
    for ch in text:
        if ch == "\n":
            line += 1
        elif ch in "[{":
            depth += 1
            if depth > best:
                best, best_line = depth, line
        elif ch in "]}":
            depth -= 1
    return best_line


def load_yaml_value(text: str) -> Any:
    """Parse a command-line value (`--set k=v`) with the same rules as a spec."""
    return load_yaml(text, "<--set>")
