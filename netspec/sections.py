"""Static checks of a spec's run sections (data, train, eval, search) for `netspec check`.

The graph is checked by the compiler; these sections belong to the runtime, whose
config schemas are TF-free, so a typo in `train:` is caught before any training, and a
`data:` whose images cannot feed the input (size, channels) before `fit` reads a face.
"""

from __future__ import annotations

from compiler.api import Spec
from compiler.diagnostics import DiagnosticSink, SpecError, did_you_mean


def check_sections(spec: Spec) -> None:
    """Raise one SpecError listing every problem in the run sections."""
    from runtime.data.config import data_config_for_graph
    from runtime.evaluate.eval_config import eval_config
    from runtime.train.train_config import train_config

    sink = DiagnosticSink()
    for name, check in (("data", lambda s: data_config_for_graph(s, spec.graph, loc=s.loc)),
                        ("train", lambda s: train_config(s, s.loc)),
                        ("eval", lambda s: eval_config(s, s.loc))):
        if name in spec.sections:
            try:
                check(spec.sections[name])
            except SpecError as e:
                sink.extend(e)
    if "search" in spec.sections:
        _check_search(spec, sink)
    sink.raise_if_any()


def _check_search(spec: Spec, sink: DiagnosticSink) -> None:
    from runtime.search.space import load_search_config

    section = spec.sections["search"]
    try:
        cfg = load_search_config(section, section.loc, key_locs=section.loc_of)
    except SpecError as e:
        sink.extend(e)
        return
    for name in dict(cfg.params or {}):
        if name not in spec.params:
            sink.error(section.loc_of("params"), f"search param '{name}' is not a spec param",
                       hint=did_you_mean(name, spec.params, "spec params"))
