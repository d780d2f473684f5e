"""Macro expansion: `for` loops, template instantiation (`use`) and `if` guards.

Pre: a merged spec document and the resolved params. Post: a flat tuple of
`RawLayer`s with every `$`-substitution done; a flat spec comes back unchanged, so
expansion is idempotent (tested). Errors are collected per layer item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import re
from typing import Any

from compiler.diagnostics import DiagnosticSink, SourceLoc, SpecError, did_you_mean
from compiler.substitute import loop_envs, substitute
from compiler.yaml_loader import LocatedDict, LocatedList

RESERVED_LAYER_KEYS = ("name", "op", "in", "if", "share", "freeze", "weights_from")
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_MAX_DEPTH = 16
# A mistyped loop bound (branches: 100000) must fail fast, not exhaust memory.
_MAX_LAYERS = 10_000
_MAX_ERRORS = 50


class _Limit(Exception):
    """Stops expansion: too many layers or errors (what follows would be noise)."""

    def __init__(self, loc: SourceLoc, message: str, hint: str) -> None:
        super().__init__(message)
        self.loc, self.message, self.hint = loc, message, hint


@dataclass(frozen=True)
class RawLayer:
    """One layer after expansion: still untyped params, but concrete values."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: LocatedDict
    loc: SourceLoc
    share: str | None = None  # the layer whose weights this one uses (compiler.ir.Node)
    trainable: bool = True
    init_from: tuple[str, str] | None = None  # (trained run, layer name there)
    scope: tuple[str, ...] = ()  # module instantiation chain, outermost first

    def key_loc(self, key: str) -> SourceLoc:
        return self.params.loc_of(key)


@dataclass
class Defs:
    """What expansion may refer to: templates, modules, and (filled as it goes) the module
    instances defined so far and the `if:`-excluded layer entries (checked for known ops
    and param names by the caller, so a typo in a variant shows before it is enabled)."""

    templates: Mapping[str, Template]
    modules: Mapping[str, Any] = field(default_factory=dict)  # name -> modules.ModuleDef
    instances: dict[str, str] = field(default_factory=dict)  # instance -> module name
    excluded: list[LocatedDict] = field(default_factory=list)


@dataclass(frozen=True)
class Template:
    name: str
    args: tuple[str, ...]  # required
    defaults: Mapping[str, Any]
    layers: LocatedList
    loc: SourceLoc


def name_problem(name: str) -> str | None:
    if not _NAME.match(name):
        return ("names are lower-case segments [a-z][a-z0-9_]* joined by '.', "
                "e.g. enc3.conv")
    if "__" in name:
        return "'__' is reserved (it stands for '.' in Keras layer names)"
    return None


def parse_templates(raw: Any, loc: SourceLoc) -> dict[str, Template]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError.at(loc, "'templates' must map template names to {args, layers}")
    sink, out = DiagnosticSink(), {}
    for name, body in raw.items():
        tloc = raw.loc_of(name) if isinstance(raw, LocatedDict) else loc
        if not isinstance(name, str):
            sink.error(tloc, f"template name must be a string, found {name!r}")
            continue
        if not isinstance(body, dict) or "layers" not in body:
            sink.error(tloc, f"template '{name}' needs `layers:` (and optional `args:`, "
                             "`defaults:`)")
            continue
        unknown = set(body) - {"args", "defaults", "layers", "doc"}
        for key in sorted(map(str, unknown)):
            sink.error(body.loc_of(key), f"unknown key '{key}' in template '{name}'",
                       hint=did_you_mean(key, ("args", "defaults", "layers", "doc")))
        args = body.get("args") or []
        defaults = body.get("defaults") or {}
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            sink.error(body.loc_of("args"), f"template '{name}': args must be a list of names")
            continue
        if not isinstance(defaults, dict):
            sink.error(body.loc_of("defaults"), f"template '{name}': defaults must be a mapping")
            continue
        if not isinstance(body["layers"], list):
            sink.error(body.loc_of("layers"), f"template '{name}': layers must be a list")
            continue
        out[name] = Template(name, tuple(args), dict(defaults), body["layers"], tloc)
    sink.raise_if_any()
    return out


def expand_layers(items: Any, env: Mapping[str, Any], templates: Mapping[str, Template] | Defs,
                  loc: SourceLoc) -> tuple[RawLayer, ...]:
    """Unroll `layers:` (loops, templates, module instances). Post: only RawLayers, in
    definition order. `templates` may be a `Defs` carrying modules too."""
    if not isinstance(items, list):
        raise SpecError.at(loc, "'layers' must be a list of layers",
                           hint="each entry is `- {name: x, op: conv2d, in: [image], ...}`")
    defs = templates if isinstance(templates, Defs) else Defs(templates)
    sink = DiagnosticSink()
    out: list[RawLayer] = []
    try:
        _expand_into(items, env, defs, out, sink, depth=0, stack=())
    except _Limit as stop:
        sink.error(stop.loc, stop.message, hint=stop.hint)
    sink.raise_if_any()
    return tuple(out)


def _expand_into(items: list[Any], env: Mapping[str, Any], defs: Defs,
                 out: list[RawLayer], sink: DiagnosticSink, depth: int,
                 stack: tuple[str, ...]) -> None:
    for i, item in enumerate(items):
        iloc = items.loc_of(i) if isinstance(items, LocatedList) else SourceLoc("<spec>")
        try:
            _expand_item(item, iloc, env, defs, out, sink, depth, stack)
        except SpecError as e:
            sink.extend(e)
            if len(sink.items) >= _MAX_ERRORS:
                raise _Limit(iloc, f"stopping after {len(sink.items)} errors",
                             "fix the errors above first (a loop bound may be too large)"
                             ) from None


def _guard(item: LocatedDict, env: Mapping[str, Any]) -> bool:
    if "if" not in item:
        return True
    value = substitute(item["if"], env, item.loc_of("if"))
    if not isinstance(value, bool):
        raise SpecError.at(item.loc_of("if"), f"'if' needs true or false, found {value!r}",
                           hint="e.g. if: ${branches >= 6} or if: $use_skip")
    return value


def _expand_item(item: Any, iloc: SourceLoc, env: Mapping[str, Any], defs: Defs,
                 out: list[RawLayer], sink: DiagnosticSink, depth: int,
                 stack: tuple[str, ...]) -> None:
    if not isinstance(item, LocatedDict):
        raise SpecError.at(iloc, f"a layer entry must be a mapping, found {item!r}",
                           hint="write `- {name: x, op: conv2d, in: [image]}`")
    kinds = [k for k in ("op", "for", "use") if k in item]
    if len(kinds) != 1:
        what = "has none of" if not kinds else f"mixes {', '.join(kinds)}; use one of"
        raise SpecError.at(item.loc, f"layer entry {what} `op` (a layer), `for` (a loop), "
                                     "`use` (a template)",
                           hint=f"keys found: {', '.join(map(str, item))}")
    if not _guard(item, env):
        if kinds[0] == "op":
            defs.excluded.append(item)
        return
    if depth > _MAX_DEPTH:
        raise SpecError.at(item.loc, f"macros nest deeper than {_MAX_DEPTH} levels",
                           hint="a template probably uses itself")
    if kinds[0] == "for":
        extra = set(item) - {"for", "layers", "if"}
        if extra or "layers" not in item:
            raise SpecError.at(item.loc, "a loop is {for: {VAR: VALUES}, layers: [...]}",
                               hint=f"unexpected keys: {sorted(map(str, extra))}" if extra
                               else "add `layers:`")
        body = item["layers"]
        if not isinstance(body, list):
            raise SpecError.at(item.loc_of("layers"), "loop `layers` must be a list")
        for sub_env in loop_envs(item, env, item.loc):
            _expand_into(body, sub_env, defs, out, sink, depth + 1, stack)
        return
    if kinds[0] == "use":
        _instantiate(item, env, defs, out, sink, depth, stack)
        return
    if item.get("op") == "module":
        from compiler.instances import instantiate_module

        before = len(out)
        def expand_body(layers: Any, menv: Mapping[str, Any], mstack: tuple[str, ...],
                        into: list[RawLayer]) -> bool:
            errors = len(sink.items)
            _expand_into(layers, menv, defs, into, sink, depth + 1, mstack)
            return len(sink.items) == errors

        instantiate_module(_substituted(item, env), env, defs, out, stack, expand_body)
        if len(out) - before > _MAX_LAYERS or len(out) > _MAX_LAYERS:
            raise _Limit(item.loc, f"the spec expands to more than {_MAX_LAYERS:,} layers",
                         "check the module's steps and loop bounds")
        return
    out.append(_layer(item, env))
    if len(out) > _MAX_LAYERS:
        raise _Limit(item.loc, f"the spec expands to more than {_MAX_LAYERS:,} layers",
                     "check the loop bounds and params (e.g. a branch count)")


def _instantiate(item: LocatedDict, env: Mapping[str, Any], defs: Defs,
                 out: list[RawLayer], sink: DiagnosticSink, depth: int,
                 stack: tuple[str, ...]) -> None:
    extra = set(item) - {"use", "with", "if"}
    if extra:
        raise SpecError.at(item.loc, f"unexpected keys {sorted(map(str, extra))} in `use`",
                           hint="template arguments go under `with:`")
    templates = defs.templates
    name = substitute(item["use"], env, item.loc_of("use"))
    if not isinstance(name, str) or name not in templates:
        raise SpecError.at(item.loc_of("use"), f"unknown template '{name}'",
                           hint=did_you_mean(str(name), templates, "templates"))
    if name in stack:
        raise SpecError.at(item.loc_of("use"), f"template '{name}' uses itself",
                           hint=" -> ".join((*stack, name)))
    tpl = templates[name]
    args = substitute(item.get("with") or LocatedDict(loc=item.loc), env, item.loc_of("with"))
    tenv = {**env, **bind_args(item, args, f"template '{name}'", tpl.args, tpl.defaults,
                               tpl.loc)}
    _expand_into(tpl.layers, tenv, defs, out, sink, depth + 1, (*stack, name))


def bind_args(item: LocatedDict, args: Any, what: str, required: tuple[str, ...],
              defaults: Mapping[str, Any], defined_at: SourceLoc) -> dict[str, Any]:
    """The `with:` of a template or module instance: only known argument names, every
    required one given; returns the defaults overridden by `args`."""
    if not isinstance(args, dict):
        raise SpecError.at(item.loc_of("with"), "`with` must map argument names to values")
    allowed = (*required, *defaults)
    for key in args:
        if key not in allowed:
            raise SpecError.at(args.loc_of(key), f"{what} has no argument '{key}'",
                               hint=did_you_mean(str(key), allowed, "arguments"))
    missing = [a for a in required if a not in args]
    if missing:
        raise SpecError.at(item.loc, f"{what} needs argument(s) "
                                     f"{', '.join(map(repr, missing))}",
                           hint=f"defined at {defined_at}")
    return {**defaults, **args}


def _substituted(item: LocatedDict, env: Mapping[str, Any]) -> LocatedDict:
    """The entry with every value but `if` substituted (errors collected)."""
    sink = DiagnosticSink()
    values = LocatedDict(loc=item.loc)
    values.key_locs = dict(item.key_locs)
    for key, value in item.items():
        if key == "if":
            continue
        try:
            values[key] = substitute(value, env, item.loc_of(key))
        except SpecError as e:
            sink.extend(e)
    sink.raise_if_any()
    return values


def _layer(item: LocatedDict, env: Mapping[str, Any]) -> RawLayer:
    values = _substituted(item, env)
    name = values.get("name")
    op = values.get("op")
    if not isinstance(name, str):
        raise SpecError.at(item.loc, "layer has no `name`" if name is None
                           else f"layer name must be a string, found {name!r}",
                           hint="every layer needs a unique name, e.g. name: enc1.conv")
    if (problem := name_problem(name)) is not None:
        raise SpecError.at(item.loc_of("name"), f"bad layer name '{name}'", hint=problem)
    if not isinstance(op, str):
        raise SpecError.at(item.loc_of("op"), f"layer '{name}': op must be a string, "
                                              f"found {op!r}")
    raw_in = values.get("in", [])
    if isinstance(raw_in, str):
        raw_in = [raw_in]
    if not isinstance(raw_in, list) or not all(isinstance(x, str) for x in raw_in):
        raise SpecError.at(item.loc_of("in"), f"layer '{name}': `in` must be a layer name "
                                              f"or a list of names, found {raw_in!r}")
    share = values.get("share")  # Caffe-style: use the weights of the layer named here
    if share is not None and not isinstance(share, str):
        raise SpecError.at(item.loc_of("share"), f"layer '{name}': share must name a layer "
                                                 f"defined above, found {share!r}")
    freeze = values.get("freeze", False)
    if not isinstance(freeze, bool):
        raise SpecError.at(item.loc_of("freeze"), f"layer '{name}': freeze must be true or "
                                                  f"false, found {freeze!r}")
    init_from = _weights_from(values.get("weights_from"), name, item)
    params = LocatedDict({k: v for k, v in values.items() if k not in RESERVED_LAYER_KEYS},
                         loc=item.loc)
    params.key_locs = {k: item.loc_of(k) for k in params}
    return RawLayer(name, op, tuple(raw_in), params, item.loc, share=share,
                    trainable=not freeze, init_from=init_from)


def _weights_from(raw: Any, name: str, item: LocatedDict) -> tuple[str, str] | None:
    """`weights_from: RUN` (the layer of the same name) or `{run: RUN, layer: NAME}`."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw, name
    if isinstance(raw, dict) and set(raw) == {"run", "layer"} and all(
            isinstance(v, str) for v in raw.values()):
        return raw["run"], raw["layer"]
    raise SpecError.at(item.loc_of("weights_from"), f"layer '{name}': weights_from is a run "
                                                    f"directory or {{run: RUN, layer: NAME}}, "
                                                    f"found {raw!r}")


def check_excluded_layers(items: list[LocatedDict], ops: Any, sink: DiagnosticSink) -> None:
    """Layer entries dropped by their `if:` must still name a known op and only its params
    (values are not checked: they may only make sense when the entry is enabled)."""
    from dataclasses import fields

    from compiler.modules import INSTANCE_KEYS

    for item in items:
        op, name = item.get("op"), item.get("name")
        if not isinstance(op, str) or "$" in op:
            continue
        what = f"layer {name!r} (excluded by its `if:`)" if isinstance(name, str) \
            else "a layer excluded by its `if:`"
        if op == "module":
            known: set[str] = set(INSTANCE_KEYS)
        else:
            opdef = ops.get(op)
            if opdef is None:
                sink.error(item.loc_of("op"), f"{what}: unknown op '{op}'",
                           hint=did_you_mean(op, ops.names(), "known ops"))
                continue
            known = {f.name for f in fields(opdef.params)}
        for key in item:
            if key not in RESERVED_LAYER_KEYS and key not in known:
                sink.error(item.loc_of(key), f"{what}: {op} has no param '{key}'",
                           hint=did_you_mean(str(key), sorted(known), "params"))
