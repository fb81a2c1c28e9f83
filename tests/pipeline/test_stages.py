"""Each stage on the toy space, through files only, as the runner calls it."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from pipeline.context import StageContext, round_dir
from pipeline.datasets import Digits
from pipeline.errors import ConfigError
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from pipeline.stages import emit, evaluate, explore, graph, pockets, refine, sample, select
from spaces.shrunk import ShrunkSpace
from spaces.toy import ToySpace

POCKETS = pockets.Cfg(radius=1, good_quantile=0.5, max_pockets=3, min_pocket_size=2)


class CountingEvaluator(BenchmarkEvaluator):
    """Benchmark lookups that count how often they are asked."""

    calls = 0

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().evaluate(arch)


def context(run_dir: Path, table: Path, round_index: int, stage: str, budget: int = 100) -> StageContext:
    space = ToySpace()
    folder = round_dir(run_dir, round_index) / stage if stage != "emit" else run_dir / "emit"
    return StageContext(space, CountingEvaluator(space, Digits(), str(table)), np.random.default_rng(round_index),
                        run_dir, round_index, stage, folder, budget)


def run_round0(run_dir: Path, table: Path, n: int = 12, budget: int = 100) -> None:
    sample.run(context(run_dir, table, 0, "sample", budget), sample.Cfg(n_samples=n))
    evaluate.run(context(run_dir, table, 0, "evaluate", budget), evaluate.Cfg(progress=False))
    graph.run(context(run_dir, table, 0, "graph", budget), graph.Cfg(link_distance=1))
    pockets.run(context(run_dir, table, 0, "pockets", budget), POCKETS)


def test_sample_is_unique_uniform_and_capped_by_budget(tmp_path: Path, toy_table: Path) -> None:
    sample.run(context(tmp_path, toy_table, 0, "sample", budget=5), sample.Cfg(n_samples=12))
    rows = context(tmp_path, toy_table, 0, "evaluate").load("proposals")
    assert len(rows) == 5 and len({r["arch"] for r in rows}) == 5 and {r["origin"] for r in rows} == {"uniform"}


def test_evaluate_respects_budget_and_resumes_from_its_journal(tmp_path: Path, toy_table: Path) -> None:
    sample.run(context(tmp_path, toy_table, 0, "sample"), sample.Cfg(n_samples=10))
    ctx = context(tmp_path, toy_table, 0, "evaluate", budget=8)
    first = ctx.load("proposals")[:3]
    # A previous, interrupted attempt scored three archs before dying.
    with (ctx.folder / "journal.jsonl").open("w") as handle:
        for p in first:
            handle.write(json.dumps({"arch": p["arch"], "origin": "uniform", "round": 0, "score": 1.0, "val_acc": 1.0}) + "\n")
        handle.write('{"arch": "torn')
    CountingEvaluator.calls = 0
    metrics = evaluate.run(ctx, evaluate.Cfg(progress=False))
    assert metrics["evaluated"] == 8 and CountingEvaluator.calls == 5
    assert [r["score"] for r in ctx.load("scores")][:3] == [1.0, 1.0, 1.0]


def test_graph_edges_are_single_decision_changes(tmp_path: Path, toy_table: Path) -> None:
    run_round0(tmp_path, toy_table)
    ctx = context(tmp_path, toy_table, 0, "pockets")
    g = graph.load_graph(ctx.load("graph"))
    space = ToySpace()
    assert g.number_of_nodes() == 12
    for a in g:
        for b in g:
            linked = g.has_edge(a, b)
            assert linked == (a != b and space.distance(space.from_str(a), space.from_str(b)) == 1)


def test_extract_pockets_by_hand() -> None:
    g = nx.path_graph(["a", "b", "c", "d", "e"])
    g.add_node("f")
    scores = {"a": 9.0, "b": 8.0, "c": 1.0, "d": 7.0, "e": 6.0, "f": 10.0}
    cfg = pockets.Cfg(radius=1, good_quantile=0.5, max_pockets=5, min_pocket_size=2)
    found = pockets.extract_pockets(g, scores, cut=5.0, cfg=cfg)
    # f is isolated (too small), c is below the cut and so splits the path into two pockets.
    assert [(p["seed"], [m["arch"] for m in p["members"]]) for p in found] == [("a", ["a", "b"]), ("d", ["d", "e"])]


def test_pockets_are_disjoint_and_good(tmp_path: Path, toy_table: Path) -> None:
    run_round0(tmp_path, toy_table, n=27)
    data = context(tmp_path, toy_table, 0, "emit").load("pockets", 0)
    members = [m["arch"] for p in data["pockets"] for m in p["members"]]
    assert len(members) == len(set(members)) > 0
    assert all(m["score"] >= data["threshold"] for p in data["pockets"] for m in p["members"])


def test_explore_proposes_unevaluated_neighbours_of_pocket_members(tmp_path: Path, toy_table: Path) -> None:
    run_round0(tmp_path, toy_table, n=8)
    ctx = context(tmp_path, toy_table, 1, "explore")
    metrics = explore.run(ctx, explore.Cfg(seeds_per_round=2, neighbors_per_seed=3, fresh_samples=1, acquisition="random"))
    rows = ctx.load("proposals")
    evaluated = set(ctx.evaluated())
    space = ToySpace()
    assert metrics["seeds"] == 2 and len(rows) == 7
    assert not {r["arch"] for r in rows} & evaluated
    for row in rows[:-1]:
        assert space.distance(space.from_str(row["arch"]), space.from_str(row["origin"])) == 1
    assert rows[-1]["origin"] == "uniform"


def test_ucb_explore_shares_the_batch_across_localities_by_the_surrogate(tmp_path: Path, toy_table: Path) -> None:
    run_round0(tmp_path, toy_table, n=10)
    ctx = context(tmp_path, toy_table, 1, "explore")
    cfg = explore.Cfg(seeds_per_round=2, neighbors_per_seed=3, fresh_samples=0, batch_size=4, kappa=0.5, trees=20,
                      explore_pockets=2, seeds_per_pocket=2, radius=1, mutation_fraction=0.0)
    explore.run(ctx, cfg)
    rows = ctx.load("proposals")
    evaluated = ctx.evaluated()
    space = ToySpace()
    groups = explore.localities(space, explore.best_archs(evaluated, len(evaluated)), 2, 1)
    parents = {a for g in groups for a in g[:2]}
    assert len(groups) == 2 and len(rows) == 4 and not {r["arch"] for r in rows} & set(evaluated)
    assert {r["origin"] for r in rows} <= parents
    assert {r["origin"] for r in rows} & set(groups[0]) and {r["origin"] for r in rows} & set(groups[1])
    for group in groups:  # within a locality, best acquisition first
        ucb = [r["predicted"] + 0.5 * r["uncertainty"] for r in rows if r["origin"] in group]
        assert ucb == sorted(ucb, reverse=True)
    assert all(space.distance(space.from_str(r["arch"]), space.from_str(r["origin"])) == 1 for r in rows)


def test_mutation_fraction_spends_part_of_the_batch_on_rea_style_children(tmp_path: Path, toy_table: Path) -> None:
    run_round0(tmp_path, toy_table, n=10)
    ctx = context(tmp_path, toy_table, 1, "explore")
    cfg = explore.Cfg(seeds_per_round=2, neighbors_per_seed=3, fresh_samples=0, batch_size=4, trees=20,
                      explore_pockets=2, seeds_per_pocket=2, radius=1, mutation_fraction=0.5)
    explore.run(ctx, cfg)
    rows = ctx.load("proposals")
    evaluated = ctx.evaluated()
    space = ToySpace()
    children = [r for r in rows if r.get("predicted") is None]
    assert len(rows) == 4 and len(children) == 2 and len({r["arch"] for r in rows}) == 4
    assert all(r["origin"] in evaluated and r["arch"] not in evaluated for r in children)
    assert all(space.distance(space.from_str(r["arch"]), space.from_str(r["origin"])) == 1 for r in children)


def test_localities_group_archs_around_separated_seeds() -> None:
    space = ToySpace()
    ranked = ["width=8;activation=relu;depth=1", "width=8;activation=relu;depth=2", "width=128;activation=tanh;depth=3",
              "width=32;activation=relu;depth=1", "width=128;activation=sigmoid;depth=3"]
    groups = explore.localities(space, ranked, 2, 1)
    assert groups == [[ranked[0], ranked[1], ranked[3]], [ranked[2], ranked[4]]]


def test_best_round_prefers_higher_mean_then_later_round() -> None:
    def rnd(i: int, mean: float) -> dict:
        return {"round": i, "pockets": [{}], "summary": {"mean_pocket_score": mean}}

    rounds = [{"round": 0, "pockets": [], "summary": {"mean_pocket_score": float("nan")}}, rnd(1, 5.0), rnd(2, 7.0), rnd(3, 7.0)]
    assert emit.best_round(rounds)["round"] == 3
    assert emit.best_round([rnd(0, 9.0), rnd(1, 5.0)])["round"] == 1  # round 0 is only the sample
    assert emit.best_round([rnd(0, 9.0)])["round"] == 0  # ...unless nothing was explored after it
    with pytest.raises(ConfigError, match="no round of .* grew a pocket"):
        emit.best_round(rounds[:1])


def test_emit_writes_a_loadable_shrunk_space_and_plot(tmp_path: Path, toy_table: Path) -> None:
    run_round0(tmp_path, toy_table, n=27)
    metrics = emit.run(context(tmp_path, toy_table, 0, "emit"), emit.Cfg(provenance={"seed": 0}))
    shrunk = ShrunkSpace.load(tmp_path / "emit" / "shrunk_space.json")
    assert shrunk.size() == metrics["shrunk_size"] > 0 and shrunk.provenance["seed"] == 0
    assert (tmp_path / "emit" / "edf.png").stat().st_size > 1000


def test_select_top_and_random(tmp_path: Path, toy_table: Path) -> None:
    sample.run(context(tmp_path, toy_table, 0, "sample"), sample.Cfg(n_samples=15))
    evaluate.run(context(tmp_path, toy_table, 0, "evaluate"), evaluate.Cfg(progress=False))
    ctx = context(tmp_path, toy_table, 0, "select")
    select.run(ctx, select.Cfg(size=4, rule="top"))
    scores = sorted((row["score"] for row in ctx.evaluated().values()), reverse=True)
    kept = [m["score"] for m in ctx.load("pockets")["pockets"][0]["members"]]
    assert kept == scores[:4]
    select.run(ctx, select.Cfg(size=4, rule="random"))
    assert len(ctx.load("pockets")["pockets"][0]["members"]) == 4


def test_op_pruning_drops_the_worst_option_of_every_decision(tmp_path: Path, toy_table: Path) -> None:
    sample.run(context(tmp_path, toy_table, 0, "sample"), sample.Cfg(n_samples=27))
    evaluate.run(context(tmp_path, toy_table, 0, "evaluate"), evaluate.Cfg(progress=False))
    ctx = context(tmp_path, toy_table, 0, "refine")
    metrics = refine.run(ctx, refine.Cfg(rule="op_pruning", target_size=2))
    allowed = ctx.load("restriction")["allowed"]
    assert [len(a) for a in allowed] == [2, 2, 2] and metrics["shrunk_size"] == 8
    rows = ctx.evaluated()
    space = ToySpace()
    for d, opts in enumerate(allowed):
        means = {o: np.mean([r["score"] for a, r in rows.items() if space.from_str(a)[d] == o]) for o in space.options[d]}
        dropped = (set(space.options[d]) - set(opts)).pop()
        assert means[dropped] == min(means.values())
    # The next round samples inside the restriction only.
    nxt = context(tmp_path, toy_table, 1, "sample")
    sample.run(nxt, sample.Cfg(n_samples=27, samples_per_round=5))
    assert nxt.load("proposals") == []  # all 8 archs inside were already evaluated


def test_regnet_restricts_one_decision_that_raises_the_mean(tmp_path: Path, toy_table: Path) -> None:
    sample.run(context(tmp_path, toy_table, 0, "sample"), sample.Cfg(n_samples=27))
    evaluate.run(context(tmp_path, toy_table, 0, "evaluate"), evaluate.Cfg(progress=False))
    ctx = context(tmp_path, toy_table, 0, "refine")
    refine.run(ctx, refine.Cfg(rule="regnet", target_size=2))
    allowed = ctx.load("restriction")["allowed"]
    assert sum(len(a) < 3 for a in allowed) == 1
    inside = [r["score"] for a, r in ctx.evaluated().items()
              if all(o in opts for o, opts in zip(ToySpace().from_str(a), allowed, strict=True))]
    assert np.mean(inside) > np.mean([r["score"] for r in ctx.evaluated().values()])
