"""shrink.latent.locality=latent end to end on every space; the learned locality's graph, proposals and cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.artifacts import read_json
from pipeline.embedding import EmbeddingCfg, train_encoder
from pipeline.errors import ConfigError
from pipeline.latent import Cfg, Latent, enumerable
from pipeline.run import run
from spaces.shrunk import ShrunkSpace
from spaces.toy import ToySpace
from tests.conftest import compose_cfg
from tests.pipeline.test_run import toy_cfg

TINY_ENCODER = ("shrink.latent.latent_steps=40", "shrink.latent.latent_train=300")
SMALL = ("evaluator=params", "shrink.budget=30", "shrink.sample.n_samples=16", "progress=false", "supernet=none",
         "shrink.pockets.target_size=20", "shrink.pockets.pool_per_seed=100", *TINY_ENCODER)


@pytest.fixture(scope="module")
def toy_latent() -> Latent:
    space = ToySpace()
    archs = [space.validate(a) for a in __import__("itertools").product(*space.options)]
    model = train_encoder(space, archs, EmbeddingCfg(steps=300, hidden=32, layers=2, batch_size=9))
    return Latent(space, model, Cfg(locality="latent"), enumerable(space, 1000))


def test_knn_pairs_link_each_arch_to_its_nearest(toy_latent: Latent) -> None:
    archs = toy_latent.universe[:12]
    pairs = toy_latent.knn_pairs(archs, 3)
    z = toy_latent.vectors(archs)
    assert (pairs[:, 0] < pairs[:, 1]).all() and len(np.unique(pairs, axis=0)) == len(pairs)
    for i in range(len(archs)):
        nearest = np.argsort(np.linalg.norm(z - z[i], axis=1), kind="stable")[1:4]
        linked = {int(b) for a, b in pairs if a == i} | {int(a) for a, b in pairs if b == i}
        assert len(linked & {int(j) for j in nearest}) >= 2  # ties in distance may swap the third


def test_nearest_returns_valid_unexcluded_archs_closest_first(toy_latent: Latent) -> None:
    seed, rng = toy_latent.universe[0], np.random.default_rng(0)
    near = toy_latent.nearest(seed, 5, {toy_latent.universe[1]}, lambda a: True, rng)
    dist = np.linalg.norm(toy_latent.vectors(near) - toy_latent.vectors([seed])[0], axis=1)
    assert len(near) == 5 and seed not in near and toy_latent.universe[1] not in near
    assert (np.diff(dist) >= -1e-6).all()


def test_latent_toy_run_links_by_latent_caches_the_encoder_and_logs_it(tmp_path: Path, toy_table: Path,
                                                                      monkeypatch) -> None:
    extra = ("shrink.latent.locality=latent", "shrink.latent.features=both", f"cache_dir={tmp_path}/cache", *TINY_ENCODER)
    result = run(toy_cfg(tmp_path, toy_table, *extra), tmp_path / "run")
    graph = read_json(next((tmp_path / "run").glob("round_001/graph/graph.json")))
    assert graph["locality"] == "latent" and graph["edges"]
    assert ShrunkSpace.load(result.shrunk_space).size() > 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert [a.path for a in client.list_artifacts(result.run_id, "embedding")][0].endswith(".pt")
    monkeypatch.setattr("pipeline.embedding.train_encoder", lambda *a, **k: pytest.fail("retrained"))
    again = run(toy_cfg(tmp_path, toy_table, *extra), tmp_path / "run2")  # the cached encoder is reused
    assert ShrunkSpace.load(again.shrunk_space).to_dict()["pockets"] == ShrunkSpace.load(result.shrunk_space).to_dict()["pockets"]


SLOW_SPACES = [pytest.param(s, marks=pytest.mark.slow) for s in ("nb_macro", "nb101", "mobilenet")]


@pytest.mark.parametrize("space", ["nb201", *SLOW_SPACES])
def test_latent_locality_runs_end_to_end_on_every_space(tmp_path: Path, space: str) -> None:
    cfg = compose_cfg(f"space={space}", *SMALL, "shrink.latent.locality=latent", f"cache_dir={tmp_path}/cache",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    result = run(cfg, tmp_path / "run")
    shrunk = ShrunkSpace.load(result.shrunk_space)
    assert shrunk.size() > 0 and result.rounds[-1]["evaluated_total"] == 30
    explored = [r["arch"] for r in read_json_rows(tmp_path / "run")]
    assert len(set(explored)) == len(explored)  # latent proposals never repeat an evaluated arch


def read_json_rows(run_dir: Path) -> list[dict]:
    from pipeline.artifacts import read_rows

    return [row for path in sorted(run_dir.glob("round_*/evaluate/scores.csv")) for row in read_rows(path)]


@pytest.mark.parametrize(("overrides", "message"), [
    (("space=toy", "shrink.latent.locality=near"), "shrink.latent.locality='near' is not one of space, decisions, edit, latent"),
    (("space=nb101", "shrink.latent.locality=decisions"), "nb101 uses shrink.latent.locality=edit"),
    (("space=nb201", "shrink.latent.locality=edit"), "nb201 uses shrink.latent.locality=decisions"),
    (("space=toy", "shrink.latent.features=graph"), "shrink.latent.features='graph' is not one of encoding, latent, both"),
    (("space=toy", "shrink=topk", "+shrink.latent.locality=latent"), "shrink.latent is not a stage of method topk"),
])
def test_bad_locality_settings_fail_before_evaluating(tmp_path: Path, overrides: tuple, message: str) -> None:
    cfg = compose_cfg(*overrides, "progress=false", "supernet=none", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "run")
    assert not list((tmp_path / "run").glob("round_*"))
