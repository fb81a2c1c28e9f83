"""Typed, nested config groups: composition refuses wrong types, misspelt and foreign keys by full key path,
and a flat key of before the per-stage nodes gets a one-line migration error."""

from __future__ import annotations

import pytest

from pipeline.cli import check
from pipeline.errors import ConfigError
from pipeline.schema import shrink_schemas
from tests.conftest import HANG_GUARD_S, ROOT


@pytest.mark.parametrize(("overrides", "message"), [
    (["shrink.budgt=3"], r"unknown key 'shrink.budgt'; did you mean shrink.budget\?"),
    (["shrink.budget=abc"], r"shrink.budget: Value 'abc' of type 'str' could not be converted to Integer"),
    (["shrink=topk", "shrink.pockets.radius=2"],
     r"unknown key 'shrink.pockets.radius': this shrink config has no 'pockets' node \(its nodes: sample, select;"),
    (["shrink=op_pruning", "shrink.pockets.good_quantile=0.5"], r"unknown key 'shrink.pockets.good_quantile'"),
    (["shrink.pockets.kappa=1"],
     r"unknown key 'shrink.pockets.kappa': kappa is a setting of another stage; write shrink.explore.kappa=1$"),
    (["shrink=topk", "shrink.select.radius=2"], r"unknown key 'shrink.select.radius'"),
    (["supernet.train.epochs=ten"],
     r"supernet.train.epochs: Value 'ten' .* Integer; give a value of that type, e.g. supernet.train.epochs=100"),
    (["supernet.train.lr=fast"], r"supernet.train.lr: Value 'fast' .* Float"),
    (["tracking.stage_runs=maybe"], r"tracking.stage_runs: Value 'maybe' is not a valid bool"),
])
def test_composition_refuses_bad_keys_and_types_by_full_path(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check(["space=toy", *overrides])


@pytest.mark.parametrize(("overrides", "message"), [
    (["shrink.radius=3"], r"^shrink.radius has moved into its stage's node: write shrink.pockets.radius=3$"),
    (["shrink.trees=50"], r"write shrink.pockets.trees=50$"),  # explore's trees copies the pockets' value
    (["shrink.locality=latent"], r"write shrink.latent.locality=latent$"),
    (["shrink=topk", "shrink.n_samples=9"], r"write shrink.sample.n_samples=9$"),
    (["shrink=regnet", "shrink.rule=regnet"], r"write shrink.refine.rule=regnet$"),
    (["supernet.epochs=3"], r"^supernet.epochs has moved into its stage's node: write supernet.train.epochs=3$"),
    (["supernet.population=8"], r"write supernet.search.population=8$"),
])
def test_a_flat_key_of_the_old_layout_names_its_new_place(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check(["space=toy", *overrides])


def test_recorded_flat_overrides_of_an_old_run_are_moved_to_their_nodes() -> None:
    from pipeline.cli import migrate

    assert migrate(["shrink.radius=3", "shrink.budget=50", "supernet.epochs=2", "seed=1"]) == [
        "shrink.pockets.radius=3", "shrink.budget=50", "supernet.train.epochs=2", "seed=1"]
    assert migrate(["shrink=topk", "shrink.size=5"]) == ["shrink=topk", "shrink.select.size=5"]


def test_an_old_flat_manifest_is_compared_key_by_key_in_the_new_layout(tmp_path) -> None:
    from pipeline.artifacts import write_json
    from pipeline.rundir import manifest_config, prepare_run_dir

    cfg = check(["space=toy", "shrink.pockets.radius=3"])
    nested = manifest_config(cfg)
    flat = {**nested, "shrink": {k: v for node in nested["shrink"].values() if isinstance(node, dict)
                                 for k, v in node.items()} | {k: v for k, v in nested["shrink"].items()
                                                              if not isinstance(v, dict)}}
    flat["shrink"]["plan"] = nested["shrink"]["plan"]
    flat["shrink"]["samples_per_round"] = None  # unset in the old layout: the stage's own default (0) applied
    write_json(tmp_path / "run.json", {"config": flat})
    prepare_run_dir(tmp_path, cfg)  # same settings, old layout: accepted
    with pytest.raises(ConfigError, match=r"shrink.pockets.radius=3, not 2"):
        prepare_run_dir(tmp_path, check(["space=toy"]))


def test_every_shrink_yaml_sets_only_keys_its_method_schema_types() -> None:
    for method, schema in shrink_schemas().items():
        cfg = check(["space=toy", f"shrink={method}"])
        assert set(cfg.shrink) == {f.name for f in schema.__dataclass_fields__.values()}
        assert cfg.shrink.method == method


def test_a_good_config_composes_with_its_values_typed() -> None:
    cfg = check(["space=toy", "shrink.budget=50", "supernet.train.lr=0.1"])
    assert cfg.shrink.budget == 50 and cfg.supernet.train.lr == 0.1 and cfg.tracking.stage_runs is False


def test_each_stage_module_runs_with_the_light_config_class_the_schema_is_built_from() -> None:
    import subprocess
    import sys

    from pipeline import latent
    from pipeline.build import STAGES
    from pipeline.schema import stage_cfg

    assert all(module.Cfg is stage_cfg(name) for name, module in STAGES.items())
    assert latent.Cfg is stage_cfg("latent")
    code = ("import sys, pipeline.config.stages, pipeline.schema; pipeline.schema.register(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'networkx'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD_S)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr  # the schemas are built before anything heavy


def without_hydra(cfg):  # type: ignore[no-untyped-def]
    """Return a composed config without Hydra's own node (as the job sees it)."""
    from omegaconf import open_dict

    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def test_a_new_method_is_one_yaml_of_stage_nodes_and_a_plan(tmp_path, toy_table) -> None:
    from pipeline.run import run
    from spaces.shrunk import ShrunkSpace

    (tmp_path / "conf" / "shrink").mkdir(parents=True)
    (tmp_path / "conf" / "shrink" / "best_of_sample.yaml").write_text(
        "defaults:\n  - /schema/shrink/best_of_sample@_here_\n  - /stage/sample@sample\n  - /stage/select@select\n"
        "  - _self_\n"
        "method: best_of_sample\nplan: {first: [sample, evaluate, select], later: [], choose: last}\n"
        "budget: 12\nmax_rounds: 1\nsample: {n_samples: 12}\nselect: {size: 3}\n")
    cfg = without_hydra(check(["--config-dir", str(tmp_path / "conf"), "shrink=best_of_sample", "space=toy",
                               "evaluator=benchmark", f"evaluator.path={toy_table}", "progress=false",
                               f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"]))
    shrunk = ShrunkSpace.load(run(cfg, tmp_path / "run").shrunk_space)
    assert len(shrunk.arch_strs()) == 3
    # Its schema is generated from its plan like a shipped method's: typed and closed at composition.
    with pytest.raises(ConfigError, match=r"unknown key 'shrink.sample.n_sampls'; did you mean shrink.sample.n_samples\?"):
        check(["--config-dir", str(tmp_path / "conf"), "shrink=best_of_sample", "shrink.sample.n_sampls=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'shrink.pockets.radius': this shrink config has no 'pockets'"):
        check(["--config-dir", str(tmp_path / "conf"), "shrink=best_of_sample", "shrink.pockets.radius=2"])
    # Force-added (+), Hydra lets it through the schema; the runner refuses it before evaluating.
    with pytest.raises(ConfigError, match=r"shrink.pockets is not a stage of method best_of_sample"):
        run(without_hydra(check(["--config-dir", str(tmp_path / "conf"), "shrink=best_of_sample", "space=toy",
                                 "+shrink.pockets.radius=2"])), tmp_path / "other")


def config_classes() -> dict[str, tuple[str, type]]:
    """Return group path -> (method, config class) for every typed node of the composed config."""
    from pipeline.config.groups import ConstraintsCfg, LoopCfg, TrackingCfg
    from pipeline.schema import stage_cfg

    nodes = {f"shrink.{n}": ("lissnas", stage_cfg(n)) for n in ("sample", "explore", "graph", "pockets", "latent")}
    nodes |= {"shrink.select": ("topk", stage_cfg("select")), "shrink.refine": ("regnet", stage_cfg("refine")),
              "supernet.train": ("lissnas", stage_cfg("supernet")), "supernet.search": ("lissnas", stage_cfg("search")),
              "shrink": ("lissnas", LoopCfg), "tracking": ("lissnas", TrackingCfg),
              "constraints": ("lissnas", ConstraintsCfg)}
    return nodes


def test_every_knob_default_is_declared_once_and_is_the_one_the_pipeline_composes() -> None:
    """Each config class's default is what composition gives, unless the method's YAML sets its own value;
    a field that follows another key composes as that key's interpolation."""
    import dataclasses

    from omegaconf import OmegaConf

    from pipeline import CONF_DIR
    from pipeline.config.knobs import follows
    from pipeline.schema import shrink_schemas

    compared = 0
    for method in shrink_schemas():
        body = OmegaConf.to_container(OmegaConf.load(f"{CONF_DIR}/shrink/{method}.yaml"))
        composed = check([f"shrink={method}", "space=toy"])
        for path, (_, owner) in config_classes().items():
            node = OmegaConf.select(composed, path)
            if node is None:
                continue
            values = OmegaConf.to_container(node, resolve=False)
            own = body if path == "shrink" else body.get(path.split(".")[1], {}) if path.startswith("shrink.") else {}
            for f in dataclasses.fields(owner):
                if f.name in own or f.name == "method":  # the method's own value (its name, its rule, its sample)
                    continue
                target = follows(f)
                if target and target.split(".")[0] in OmegaConf.select(composed, path.rpartition(".")[0]):
                    assert values[f.name] == "${.." + target + "}", f"{path}.{f.name} should follow {target}"
                else:
                    assert values[f.name] == f.default, f"{path}.{f.name}: class {f.default!r}, composed {values[f.name]!r}"
                compared += 1
    assert compared >= 150
    stage_yaml = list((ROOT / "conf").glob("stage/*.yaml"))
    assert not stage_yaml, f"a stage's knobs are declared in its config class, not in {stage_yaml[0]}"


def test_every_number_knob_declares_its_range() -> None:
    import dataclasses
    import typing

    from pipeline.config.knobs import rule_of

    for path, (_, owner) in config_classes().items():
        hints = typing.get_type_hints(owner)
        for f in dataclasses.fields(owner):
            if hints[f.name] in (int, float, float | None) or f.name == "threads":
                assert rule_of(f) is not None, f"{path}.{f.name} has no rule"


def bad_values(rule) -> list:  # type: ignore[no-untyped-def]
    """Return values that break ``rule``."""
    from pipeline.config.knobs import Int, Number

    if isinstance(rule, Int):
        return [rule.low - 1]
    if isinstance(rule, Number):
        return [rule.low - 1.0] + ([rule.high + 1.0] if rule.high is not None else [])
    return ["bogus"]


def test_every_bad_value_of_every_typed_knob_is_refused_by_its_full_key() -> None:
    """One composition per method; each knob is set out of its rule in turn and checked as the CLI checks it."""
    import dataclasses

    from omegaconf import OmegaConf

    from pipeline.checks import check_values
    from pipeline.config.knobs import rule_of

    composed = {m: check([f"shrink={m}", "space=toy"]) for m in ("lissnas", "topk", "regnet")}
    refused = 0
    for path, (method, owner) in config_classes().items():
        for f in dataclasses.fields(owner):
            rule = rule_of(f)
            if rule is None or (path, f.name) in (("shrink.select", "rule"), ("shrink.refine", "rule")):
                continue  # a method's rule has its own message (tested in test_run.py)
            for value in bad_values(rule):
                cfg = composed[method].copy()
                OmegaConf.update(cfg, f"{path}.{f.name}", value, force_add=False)
                with pytest.raises(ConfigError) as err:
                    check_values(cfg)
                assert str(err.value).startswith(f"{path}.{f.name}="), str(err.value)
                refused += 1
    assert refused >= 60


def test_an_executor_or_dataset_value_out_of_range_is_refused_by_key() -> None:
    for override, key in (("executor.retries=-1", "executor.retries"), ("executor.workers=0", "executor.workers"),
                          ("dataset.val_fraction=1.5", "dataset.val_fraction"), ("evaluator.lr=0", "evaluator.lr")):
        with pytest.raises(ConfigError, match=rf"^{key}="):
            check([override])


def test_a_stage_marker_from_before_a_knob_existed_is_the_same_settings_at_its_default() -> None:
    from pipeline.config.stages import SupernetCfg
    from pipeline.rundir import settings_changed, stage_settings

    cfg = SupernetCfg()
    recorded = {k: v for k, v in stage_settings(cfg).items() if k != "grad_clip"}  # a marker written before grad_clip
    assert not settings_changed({"settings": recorded}, stage_settings(cfg), cfg)
    other = SupernetCfg(grad_clip=1.0)
    assert settings_changed({"settings": recorded}, stage_settings(other), other)
