"""Typed config groups: composition itself refuses wrong types, misspelt and foreign keys, by full key path."""

from __future__ import annotations

import pytest

from pipeline.cli import check
from pipeline.errors import ConfigError
from pipeline.schema import shrink_schemas


@pytest.mark.parametrize(("overrides", "message"), [
    (["shrink.budgt=3"], r"unknown key 'shrink.budgt'; did you mean shrink.budget\?"),
    (["shrink.budget=abc"], r"shrink.budget: Value 'abc' of type 'str' could not be converted to Integer"),
    (["shrink=topk", "shrink.radius=2"], r"unknown key 'shrink.radius': not a setting of this shrink config"),
    (["shrink=op_pruning", "shrink.good_quantile=0.5"], r"unknown key 'shrink.good_quantile'"),
    (["supernet.epochs=ten"], r"supernet.epochs: Value 'ten' .* Integer; give a value of that type, e.g. supernet.epochs=100"),
    (["supernet.lr=fast"], r"supernet.lr: Value 'fast' .* Float"),
    (["tracking.stage_runs=maybe"], r"tracking.stage_runs: Value 'maybe' is not a valid bool"),
])
def test_composition_refuses_bad_keys_and_types_by_full_path(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check(["space=toy", *overrides])


def test_every_shrink_yaml_sets_only_keys_its_method_schema_types() -> None:
    for method, schema in shrink_schemas().items():
        cfg = check(["space=toy", f"shrink={method}"])
        assert set(cfg.shrink) == {f.name for f in schema.__dataclass_fields__.values()}
        assert cfg.shrink.method == method


def test_a_good_config_composes_with_its_values_typed() -> None:
    cfg = check(["space=toy", "shrink.budget=50", "supernet.lr=0.1"])
    assert cfg.shrink.budget == 50 and cfg.supernet.lr == 0.1 and cfg.tracking.stage_runs is False


def test_fields_read_from_source_equal_the_imported_dataclasses() -> None:
    import dataclasses

    from pipeline import latent
    from pipeline.plan import LoopCfg
    from pipeline.run import STAGES
    from pipeline.schema import PIPELINE, declared_fields, stage_cfg

    pairs = [(stage_cfg(name), module.Cfg) for name, module in STAGES.items()]
    pairs += [((PIPELINE / "plan.py", "LoopCfg"), LoopCfg), ((PIPELINE / "latent.py", "Cfg"), latent.Cfg)]
    for (path, name), cls in pairs:
        assert declared_fields(path, name) == [(f.name, str(f.type)) for f in dataclasses.fields(cls)], cls
