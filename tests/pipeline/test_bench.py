"""Building a benchmark table: toy and NB201, read back, resumed, equivalent cells trained once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.bench import Builder, build_benchmark
from pipeline.datasets import Digits
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from pipeline.evaluators.train import TrainEvaluator
from spaces.nb201 import NB201Space
from spaces.toy import ToySpace
from tests.conftest import HANG_GUARD_S


def bench_cfg(tmp_path: Path, *overrides: str):
    from pipeline.cli import compose

    return compose("bench", ["space=toy", "evaluator.epochs=1", "evaluator.record_epochs=[1]", "progress=false",
                             f"out={tmp_path}/toy.csv", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *overrides],
                   hydra_node=False)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_toy_table_is_built_and_read_back(tmp_path: Path) -> None:
    result = build_benchmark(bench_cfg(tmp_path, "seeds=[0,1]"))
    assert result.rows == 54 and result.trained == 54
    table = rows(result.out)
    assert {r["seed"] for r in table} == {"0", "1"} and all(r["val_acc_e1"] == r["val_acc"] for r in table)
    evaluator = BenchmarkEvaluator(ToySpace(), Digits(), str(result.out))
    metrics = evaluator.evaluate(ToySpace().from_str("width=128;activation=relu;depth=1"))
    assert metrics["seeds"] == 2.0 and 0 < metrics["val_acc"] <= 100 and metrics["flops"] > 0


def test_killed_build_resumes_without_retraining(tmp_path: Path) -> None:
    cfg = bench_cfg(tmp_path)
    first = build_benchmark(cfg, limit=5)
    assert first.rows == 5
    with first.out.open("a") as handle:  # the kill tore the row being written
        handle.write("width=8;activation=tanh;depth=2,digits,0,57.")
    again = build_benchmark(cfg)
    assert (again.trained, again.reused, again.rows) == (22, 5, 27)
    assert len({r["arch"] for r in rows(again.out)}) == 27


def test_unbounded_build_of_a_huge_space_is_refused(tmp_path: Path) -> None:
    from pipeline.bench import arch_list
    from pipeline.errors import ConfigError

    class Huge(ToySpace):
        def size(self) -> int:
            return 10**20

    with pytest.raises(ConfigError, match="set n=<sample size>"):
        arch_list(Huge(), None, 0)


EQUIVALENT = [  # node 1 and node 2 swapped: the same function
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|",
]
DEAD_BRANCH = [  # node 1 feeds nothing, so its edge is dead
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
]


def test_nb201_equivalence_classes() -> None:
    space = NB201Space()
    key = lambda s: space.equivalence_key(space.from_str(s))  # noqa: E731
    assert key(EQUIVALENT[0]) == key(EQUIVALENT[1])
    assert key(DEAD_BRANCH[0]) == key(DEAD_BRANCH[1])
    assert key(EQUIVALENT[0]) != key(DEAD_BRANCH[0])
    assert key("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == "0"
    import itertools

    from spaces.nb201 import OPS

    assert len({space.equivalence_key(a) for a in itertools.product(OPS, repeat=6)}) == 6_470


def test_equivalent_cells_are_trained_once_and_mapped(tmp_path: Path) -> None:
    space = NB201Space(C=4, N=1)
    evaluator = TrainEvaluator(space, Digits(), seed=0, epochs=1, record_epochs=(1,))
    builder = Builder(space, evaluator, "digits", [0], tmp_path / "nb.csv")
    other = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    result = builder.run(EQUIVALENT + DEAD_BRANCH + [other], workers=1, threads=1, progress=False)
    assert result.trained == 3 and result.rows == 5
    table = {r["arch"]: r for r in rows(result.out)}
    for first, second in (EQUIVALENT, DEAD_BRANCH):
        assert table[second]["trained_as"] == first and table[second]["val_acc"] == table[first]["val_acc"]
    # Params are each member's own: the dead 3x3 convolution still holds weights.
    assert float(table[DEAD_BRANCH[0]]["params"]) > float(table[DEAD_BRANCH[1]]["params"])
    model = space.build_model(space.from_str(DEAD_BRANCH[1]), (1, 8, 8), 10)
    assert float(table[DEAD_BRANCH[1]]["params"]) == sum(p.numel() for p in model.parameters())


def test_a_torn_last_row_is_cut_by_structure_and_a_whole_table_is_never_rewritten(tmp_path: Path) -> None:
    import os

    from pipeline.bench import drop_torn_tail

    cfg = bench_cfg(tmp_path)
    first = build_benchmark(cfg, limit=3)
    whole = first.out.read_bytes()
    inode = os.stat(first.out).st_ino
    assert drop_torn_tail(first.out) == 0 and os.stat(first.out).st_ino == inode  # untouched
    last = whole.decode().splitlines()[-1]
    torn = last[: last.rindex(",") + 2]  # cut inside trained_as: the cell still parses ('|' or 'w')
    with first.out.open("a") as handle:
        handle.write(torn)
    assert drop_torn_tail(first.out) == len(torn) and first.out.read_bytes() == whole
    first.out.write_text(first.out.read_text().splitlines()[0][:7])  # killed inside the header
    assert drop_torn_tail(first.out) == 7 and build_benchmark(cfg).rows == 27


def test_a_table_is_built_by_one_process_at_a_time(tmp_path: Path) -> None:
    from pipeline.errors import ConfigError
    from tests.conftest import lock_held_elsewhere

    with lock_held_elsewhere(tmp_path / "toy.csv.lock") as pid, \
            pytest.raises(ConfigError, match=rf"benchmark table .*toy.csv is in use by pid {pid} on "):
        build_benchmark(bench_cfg(tmp_path))
    assert build_benchmark(bench_cfg(tmp_path, "n=2")).rows == 2  # the holder died: its lock went with it


@pytest.mark.slow
def test_twenty_sigkills_at_random_points_leave_the_uninterrupted_table(tmp_path: Path) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "pipeline.bench", "space=toy", "evaluator.epochs=1", "evaluator.record_epochs=[1]",
                "progress=false", f"out={out}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"]

    clean = tmp_path / "clean.csv"
    assert subprocess.run(command(clean), cwd=tmp_path, capture_output=True, timeout=HANG_GUARD_S).returncode == 0
    killed, rng = tmp_path / "killed.csv", random.Random(0)
    for _ in range(20):  # kills land in start-up (imports, tail repair), training and appends
        proc = subprocess.Popen(command(killed), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        time.sleep(rng.uniform(0.5, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert subprocess.run(command(killed), cwd=tmp_path, capture_output=True, timeout=HANG_GUARD_S).returncode == 0
    key = lambda r: (r["arch"], r["seed"])  # noqa: E731
    drop = {"train_seconds"}  # wall time differs between builds
    strip = lambda table: sorted(({k: v for k, v in r.items() if k not in drop} for r in table), key=key)  # noqa: E731
    assert strip(rows(killed)) == strip(rows(clean))
    assert len(rows(killed)) == 27 and killed.read_bytes().endswith(b"\n")


def test_a_bench_table_is_the_train_evaluators_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = build_benchmark(bench_cfg(tmp_path, "n=4"))
    space, arch = ToySpace(), rows(result.out)[0]["arch"]
    protocol = {"epochs": 1, "record_epochs": (1,), "seed": 0}
    cached = TrainEvaluator(space, Digits(), table=str(result.out), **protocol)
    fresh = TrainEvaluator(space, Digits(), **protocol).evaluate(space.from_str(arch))
    monkeypatch.setattr(TrainEvaluator, "train", lambda *_: pytest.fail("a recorded training was redone"))
    found = cached.evaluate(space.from_str(arch))
    assert found["val_acc"] == fresh["val_acc"] and found["test_acc_e1"] == fresh["test_acc_e1"]
    monkeypatch.undo()
    other = next(space.to_str(a) for a in space.sample_unique(27, __import__("numpy").random.default_rng(1))
                 if space.to_str(a) not in {r["arch"] for r in rows(result.out)})
    again = cached.evaluate(space.from_str(other))  # trained now, appended for the next process
    assert rows(result.out)[-1]["arch"] == other and rows(result.out)[-1]["trained_as"] == other
    monkeypatch.setattr(TrainEvaluator, "train", lambda *_: pytest.fail("an appended training was redone"))
    reread = TrainEvaluator(space, Digits(), table=str(result.out), **protocol).evaluate(space.from_str(other))
    assert reread["val_acc"] == again["val_acc"] and len(rows(result.out)) == 5


def test_a_table_of_another_protocol_is_refused_naming_the_setting(tmp_path: Path) -> None:
    from pipeline.evaluators.base import EvaluatorError

    result = build_benchmark(bench_cfg(tmp_path, "n=2"))
    with pytest.raises(EvaluatorError, match=r"another protocol \(train.epochs: table 1, now 2"):
        TrainEvaluator(ToySpace(), Digits(), epochs=2, record_epochs=(1,), table=str(result.out))


def test_equivalent_nb201_cells_share_one_training_in_the_memory(tmp_path: Path) -> None:
    space = NB201Space(C=4, N=1)
    evaluator = TrainEvaluator(space, Digits(), epochs=1, table=str(tmp_path / "nb.csv"))
    # The same function: a `none` edge into node 1 that nothing reads differs only in a dead op.
    first = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    twin = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    assert space.equivalence_key(space.from_str(first)) == space.equivalence_key(space.from_str(twin))
    a, b = evaluator.evaluate(space.from_str(first)), evaluator.evaluate(space.from_str(twin))
    assert a["val_acc"] == b["val_acc"] and len(rows(tmp_path / "nb.csv")) == 1
