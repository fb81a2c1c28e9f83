"""Building a benchmark table: toy and NB201, read back, resumed, equivalent cells trained once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from pipeline.bench import Builder, build_benchmark
from pipeline.datasets import Digits
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from pipeline.evaluators.train import TrainEvaluator
from spaces.nb201 import NB201Space
from spaces.toy import ToySpace
from tests.conftest import CONF, HANG_GUARD_S


def bench_cfg(tmp_path: Path, *overrides: str):
    from pipeline.schema import register

    register()  # the typed config groups (pipeline/schema.py)
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("bench", overrides=["space=toy", "evaluator.epochs=1", "evaluator.record_epochs=[1]",
                                           "progress=false", f"out={tmp_path}/toy.csv",
                                           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *overrides])


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
