"""Expanding one `op: module` layer into plain layers: a single instance, an unrolled
recurrence (`steps:` with `feedback:`), or a per-frame instance (`time_distributed`).

Naming: instance I of a module gives layers `I.<layer>`, its inputs enter through
`module_input` layers `I.<input>` (which check the declared shape, so a wrong binding or
feedback is a located error) and each output is addressable as `I.<output>`. Step k of a
recurrence R is the instance `R.s<k>`; `R.<output>` is the last step's. Weight sharing
is by name: a layer's `share` names the layer that owns its weights (`share: OTHER` on
the instance, or step 1 for every later step unless `share_steps: false`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from compiler.diagnostics import SourceLoc, SpecError, did_you_mean
from compiler.expand import Defs, RawLayer, bind_args, name_problem
from compiler.modules import INSTANCE_KEYS, ModuleDef, instance_scope, step_name
from compiler.substitute import substitute
from compiler.yaml_loader import LocatedDict

# (layers, env, stack, into) -> False when the body had errors (already reported)
ExpandBody = Callable[[Any, Mapping[str, Any], tuple[str, ...], list[RawLayer]], bool]
_MAX_STEPS = 64


def instantiate_module(item: LocatedDict, env: Mapping[str, Any], defs: Defs,
                       out: list[RawLayer], stack: tuple[str, ...], expand_body: ExpandBody
                       ) -> None:
    """Append the layers of the instance `item` (already substituted) to `out`; the body
    sees `env` (spec params, loop variables) plus the module's defaults and `with:`."""
    name = item.get("name")
    if not isinstance(name, str) or (problem := name_problem(name)) is not None:
        raise SpecError.at(item.loc_of("name") if "name" in item else item.loc,
                           f"bad module instance name {name!r}",
                           hint=(problem if isinstance(name, str) else "every instance needs "
                                 "a name") + " (its layers are named INSTANCE.LAYER)")
    for key in item:
        if key not in ("name", "op", "in", *INSTANCE_KEYS):
            raise SpecError.at(item.loc_of(key), f"module instance '{name}': unknown key "
                                                 f"'{key}'",
                               hint=did_you_mean(str(key), INSTANCE_KEYS))
    mname = item.get("module")
    if not isinstance(mname, str) or mname not in defs.modules:
        raise SpecError.at(item.loc_of("module") if "module" in item else item.loc,
                           f"layer '{name}': unknown module {mname!r}",
                           hint=did_you_mean(str(mname), defs.modules, "modules")
                           if defs.modules else "declare it under `modules:`")
    if f"module:{mname}" in stack:
        chain = " -> ".join(s.removeprefix("module:") for s in (*stack, f"module:{mname}")
                            if s.startswith("module:"))
        raise SpecError.at(item.loc_of("module"), f"module '{mname}' instantiates itself",
                           hint=chain)
    module: ModuleDef = defs.modules[mname]
    opts = _options(item, name, module, defs)
    bindings = _bindings(item, name, module, set(opts["feedback"]))
    menv = {**env, **bind_args(item, item.get("with") or {}, f"module '{module.name}'",
                               module.args, module.defaults, module.loc)}
    mstack = (*stack, f"module:{mname}")
    scope = instance_scope(module, name, item.loc)
    emit = _Emitter(module, menv, mstack, expand_body, out, item.loc, opts)
    steps = opts["steps"]
    if steps is None:
        emit.instance(name, bindings, opts["share"], scope)
    else:
        ref = next(iter(bindings.values()), None)
        for z in opts["feedback"]:
            bindings[z] = _initial_state(name, module, z, opts["init"], ref, item.loc, out)
        for k in range(1, steps + 1):
            owner = None
            if opts["share"] is not None:
                owner = step_name(opts["share"], 1 if opts["share_steps"] else k)
            elif k > 1 and opts["share_steps"]:
                owner = step_name(name, 1)
            here = step_name(name, k)
            emit.instance(here, bindings, owner,
                          instance_scope(module, here, item.loc) + f" (step {k} of {steps})")
            bindings = {**bindings, **{z: f"{here}.{o}" for z, o in opts["feedback"].items()}}
        last = step_name(name, steps)
        for o, _src, oloc in module.outputs:
            out.append(RawLayer(f"{name}.{o}", "identity", (f"{last}.{o}",),
                                LocatedDict(loc=oloc), item.loc, scope=(scope,)))
    defs.instances[name] = mname


def _options(item: LocatedDict, name: str, module: ModuleDef, defs: Defs) -> dict[str, Any]:
    def flag(key: str, default: bool) -> bool:
        value = item.get(key, default)
        if not isinstance(value, bool):
            raise SpecError.at(item.loc_of(key), f"module instance '{name}': {key} must be true "
                                                 f"or false, found {value!r}")
        return value

    steps = item.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or not 1 <= steps <= _MAX_STEPS):
        raise SpecError.at(item.loc_of("steps"), f"module instance '{name}': steps must be a "
                                                 f"whole number from 1 to {_MAX_STEPS}, "
                                                 f"found {steps!r}",
                           hint="steps: 1 is one-shot; K unrolls K steps with shared weights")
    feedback = item.get("feedback") or {}
    init = item.get("init") or {}
    for key, value, what in (("feedback", feedback, "module input -> module output"),
                             ("init", init, "module input -> zeros, a number or a layer")):
        if not isinstance(value, dict):
            raise SpecError.at(item.loc_of(key), f"module instance '{name}': {key} maps "
                                                 f"{what}, found {value!r}")
    if (feedback or init) and steps is None:
        raise SpecError.at(item.loc_of("feedback" if feedback else "init"),
                           f"module instance '{name}': feedback/init need `steps:`",
                           hint="e.g. steps: 2, feedback: {maps_in: maps}")
    for z, o in feedback.items():
        if module.input(z) is None:
            raise SpecError.at(feedback.loc_of(z), f"feedback: module '{module.name}' has no "
                                                   f"input '{z}'",
                               hint=did_you_mean(z, [i.name for i in module.inputs], "inputs"))
        if module.output(o) is None:
            raise SpecError.at(feedback.loc_of(z), f"feedback: module '{module.name}' has no "
                                                   f"output '{o}'",
                               hint=did_you_mean(str(o), [x for x, _, _ in module.outputs],
                                                 "outputs"))
    for z in init:
        if z not in feedback:
            raise SpecError.at(init.loc_of(z), f"init: '{z}' is not a fed-back input",
                               hint=f"feedback inputs: {', '.join(feedback) or 'none'}")
    share = item.get("share")
    if share is not None:
        if not isinstance(share, str) or share not in defs.instances:
            raise SpecError.at(item.loc_of("share"), f"module instance '{name}': share: "
                                                     f"{share!r} is not a module instance "
                                                     "defined above",
                               hint=did_you_mean(str(share), defs.instances, "instances"))
        if defs.instances[share] != module.name:
            raise SpecError.at(item.loc_of("share"), f"module instance '{name}' ({module.name}) "
                                                     f"cannot share weights with '{share}', an "
                                                     f"instance of '{defs.instances[share]}'",
                               hint="only instances of one module share weights")
    weights_from = item.get("weights_from")
    if weights_from is not None and not isinstance(weights_from, str):
        raise SpecError.at(item.loc_of("weights_from"), "weights_from must be a run directory "
                                                        f"(a path), found {weights_from!r}")
    opts = {"steps": steps, "feedback": dict(feedback), "init": init, "share": share,
            "share_steps": flag("share_steps", True), "step_stats": flag("step_stats", False),
            "time_distributed": flag("time_distributed", False),
            "trainable": flag("trainable", True), "weights_from": weights_from}
    if opts["time_distributed"] and steps is not None:
        raise SpecError.at(item.loc_of("time_distributed"), f"module instance '{name}': "
                                                            "time_distributed and steps "
                                                            "cannot be combined yet",
                           hint="instantiate the per-frame module inside the recurrent one")
    if opts["step_stats"] and steps is None:
        raise SpecError.at(item.loc_of("step_stats"), "step_stats (per-step batch-norm "
                                                      "statistics) needs `steps:`")
    return opts


def _bindings(item: LocatedDict, name: str, module: ModuleDef, fed: set[str]) -> dict[str, str]:
    """Module input -> producer, from `in:` as a mapping or a list (declared order)."""
    free = [i.name for i in module.inputs if i.name not in fed]
    raw = item.get("in", [])
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):
        if len(raw) != len(free) or not all(isinstance(x, str) for x in raw):
            raise SpecError.at(item.loc_of("in") if "in" in item else item.loc,
                               f"module instance '{name}': {module.where()} takes "
                               f"{len(free)} input(s) ({', '.join(free)}), found {raw!r}",
                               hint="bind them by name: in: {" + ", ".join(
                                   f"{f}: LAYER" for f in free) + "}")
        return dict(zip(free, raw, strict=True))
    if not isinstance(raw, dict):
        raise SpecError.at(item.loc_of("in"), f"module instance '{name}': `in` maps module "
                                              f"inputs to layers, found {raw!r}")
    for key, value in raw.items():
        if key not in free:
            why = "is fed back (feedback:)" if key in fed else "is not an input of it"
            raise SpecError.at(raw.loc_of(key), f"module instance '{name}': '{key}' {why}",
                               hint=did_you_mean(str(key), free, "inputs to bind")
                               if key not in fed else "drop it from `in:`")
        if not isinstance(value, str):
            raise SpecError.at(raw.loc_of(key), f"module instance '{name}': input '{key}' "
                                                f"must name a layer, found {value!r}")
    missing = [f for f in free if f not in raw]
    if missing:
        raise SpecError.at(item.loc_of("in"), f"module instance '{name}': input(s) "
                                              f"{', '.join(map(repr, missing))} of "
                                              f"{module.where()} are not bound",
                           hint="bind every input in `in:` (or feed it back with feedback:)")
    return dict(raw)


def _initial_state(name: str, module: ModuleDef, z: str, init: Mapping[str, Any],
                   ref: str | None, loc: SourceLoc, out: list[RawLayer]) -> str:
    """The layer fed to input `z` at step 1: a given layer, or zeros / a constant map with
    the declared channels and the batch and spatial size of the first bound input."""
    value = init.get(z, "zeros")
    if isinstance(value, str) and value != "zeros":
        return value
    if z in init and isinstance(init, LocatedDict):
        loc = init.loc_of(z)
    constant = 0.0 if value == "zeros" else value
    if isinstance(constant, bool) or not isinstance(constant, (int, float)):
        raise SpecError.at(loc, f"init: '{z}' must be zeros, a number or a layer name, found "
                                f"{value!r}")
    declared = module.input(z)
    channels = declared.shape[-1] if declared and declared.shape else None
    if not isinstance(channels, int) or ref is None:
        raise SpecError.at(loc, f"init: {value!r} for '{z}' needs its channel count and another "
                                "bound input to take the size from",
                           hint=f"declare '{z}' with a channel count in {module.where()} (e.g. "
                                "shape: [null, null, 7]) or give init a layer")
    params = LocatedDict({"channels": channels, "value": float(constant)}, loc=loc)
    layer = RawLayer(f"{name}.{z}_init", "fill", (ref,), params, loc,
                     scope=(instance_scope(module, name, loc),))
    out.append(layer)
    return layer.name


class _Emitter:
    """Writes the layers of one (step) instance."""

    def __init__(self, module: ModuleDef, env: Mapping[str, Any], stack: tuple[str, ...],
                 expand_body: ExpandBody, out: list[RawLayer], loc: SourceLoc,
                 opts: dict[str, Any]) -> None:
        self.module, self.env, self.stack, self.expand_body = module, env, stack, expand_body
        self.out, self.loc, self.opts = out, loc, opts

    def instance(self, inst: str, bindings: Mapping[str, str], owner: str | None,
                 scope: str) -> None:
        module, out = self.module, self.out
        frames = self.opts["time_distributed"]
        for port in module.inputs:
            src = bindings[port.name]
            if frames:
                fold = RawLayer(f"{inst}.{port.name}_frames", "fold_time", (src,),
                                LocatedDict(loc=port.loc), self.loc, scope=(scope,))
                out.append(fold)
                src = fold.name
            shape = None if port.shape is None else list(port.shape)
            out.append(RawLayer(f"{inst}.{port.name}", "module_input", (src,),
                                LocatedDict({"shape": shape, "port": port.name}, loc=port.loc),
                                self.loc, scope=(scope,)))
        body: list[RawLayer] = []
        if not self.expand_body(module.layers, self.env, self.stack, body):
            return  # reported; checking the outputs of a broken body would only cascade
        names = {layer.name for layer in body}
        ports = {p.name for p in module.inputs}
        for layer in body:
            self._emit(layer, inst, owner, scope, names, ports)
        ref = bindings[module.inputs[0].name] if module.inputs else None
        for o, raw_src, oloc in module.outputs:
            src = substitute(raw_src, self.env, oloc)  # e.g. "e2.relu${convs[1]}"
            if src not in names:
                raise SpecError.at(oloc, f"output '{o}' of module '{module.name}' names "
                                         f"'{src}', which is not one of its layers",
                                   hint=did_you_mean(src, names, "its layers"))
            if frames:
                out.append(RawLayer(f"{inst}.{o}", "unfold_time", (f"{inst}.{src}", ref),
                                    LocatedDict(loc=oloc), self.loc, scope=(scope,)))
            elif o != src:
                if o in names:
                    raise SpecError.at(oloc, f"module '{module.name}': output '{o}' has the "
                                             "name of another of its layers",
                                       hint="rename the output or that layer")
                out.append(RawLayer(f"{inst}.{o}", "identity", (f"{inst}.{src}",),
                                    LocatedDict(loc=oloc), self.loc, scope=(scope,)))

    def _emit(self, layer: RawLayer, inst: str, owner: str | None, scope: str,
              names: set[str], ports: set[str]) -> None:
        inputs = []
        for src in layer.inputs:
            if src not in names and src not in ports:
                raise SpecError.at(layer.loc, f"layer '{layer.name}' of module "
                                              f"'{self.module.name}' reads '{src}', which is "
                                              "neither an input nor a layer of the module",
                                   notes=(scope,),
                                   hint="modules are closed: declare it under the module's "
                                        "`inputs:` and bind it in `in:`")
            inputs.append(f"{inst}.{src}")
        own = layer.share or layer.name
        share = f"{owner}.{own}" if owner else (f"{inst}.{layer.share}" if layer.share else None)
        weights_from = self.opts["weights_from"]
        init_from = (weights_from, layer.init_from[1] if layer.init_from else layer.name) \
            if weights_from else layer.init_from
        renamed = replace(layer, name=f"{inst}.{layer.name}", inputs=tuple(inputs), share=share,
                          scope=(scope, *layer.scope), init_from=init_from,
                          trainable=layer.trainable and self.opts["trainable"])
        if self.opts["step_stats"] and layer.op == "batch_norm":
            self._split_batch_norm(renamed, share)
        else:
            self.out.append(renamed)

    def _split_batch_norm(self, bn: RawLayer, share: str | None) -> None:
        """Recurrent BN (RED-Net): statistics per step, one affine shared by all steps."""
        params = LocatedDict({**bn.params, "center": False, "scale": False}, loc=bn.params.loc)
        params.key_locs = dict(bn.params.key_locs)
        stats = replace(bn, name=f"{bn.name}_stats", params=params, share=None, init_from=None)
        self.out.append(stats)
        self.out.append(replace(bn, op="channel_affine", inputs=(stats.name,),
                                params=LocatedDict(loc=bn.params.loc), share=share))
