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
    from pipeline.schema import node_owner, stage_cfg

    assert all(module.Cfg is stage_cfg(name) for name, module in STAGES.items())
    assert latent.Cfg is node_owner("latent")
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


def test_every_stage_default_is_the_one_the_pipeline_composes() -> None:
    """A stage test that builds a stage's Cfg runs the default the pipeline runs: the two never disagree."""
    import dataclasses

    from omegaconf import OmegaConf

    from pipeline.schema import node_owner, stage_cfg

    owners = {**{f"shrink.{n}": node_owner(n) for n in ("sample", "explore", "graph", "pockets", "latent")},
              "shrink.select": stage_cfg("select"), "shrink.refine": stage_cfg("refine"),
              "supernet.train": stage_cfg("supernet"), "supernet.search": stage_cfg("search")}
    composed = {method: {g: OmegaConf.to_container(check([f"shrink={method}", "space=toy"])[g], resolve=False)
                         for g in ("shrink", "supernet")} for method in ("lissnas", "topk", "regnet")}
    compared = 0
    for key, owner in owners.items():
        group, node = key.split(".")
        values = next(c[group][node] for c in composed.values() if node in c[group])
        for f in dataclasses.fields(owner):
            if f.default is dataclasses.MISSING or f.name not in values:
                continue
            if f.name == "rule" or str(values[f.name]).startswith("${"):  # a method's own rule; a reference to a knob
                continue
            assert values[f.name] == f.default, f"{key}.{f.name}: dataclass {f.default!r}, composed {values[f.name]!r}"
            compared += 1
    assert compared >= 20
