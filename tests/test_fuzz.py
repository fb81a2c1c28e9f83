"""Fuzzed bad input: every failure is a one-line domain error, never a traceback from deep inside.

Run with -s to see how many cases each property tried.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import yaml
from hydra.errors import HydraException
from hydra.utils import instantiate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.build import stage_configs
from pipeline.cli import first_values
from pipeline.errors import ConfigError
from pipeline.evaluators.base import EvaluatorError
from pipeline.evaluators.benchmark import read_table
from spaces import InvalidArchError
from spaces.nb201 import OPS, NB201Space
from spaces.shrunk import Pocket, ShrunkSpace, ShrunkSpaceError
from tests.conftest import CONF, compose_cfg

SPACES = {p.stem: instantiate(yaml.safe_load(p.read_text())) for p in sorted((CONF / "space").glob("*.yaml"))}
TALLY: Counter[str] = Counter()
# More examples: HYPOTHESIS_MAX_EXAMPLES=1000 python -m pytest tests/test_fuzz.py -s
FUZZ = settings(max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", 60)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def one_line(err: Exception) -> bool:
    return "\n" not in str(err) and 0 < len(str(err)) < 1000


near_nb201 = st.lists(
    st.tuples(st.sampled_from([*OPS, "conv_9x9", "", "none "]), st.integers(-1, 4)), min_size=1, max_size=7
).map(lambda toks: "+".join("|" + "|".join(f"{op}~{i}" for op, i in toks[k : k + 2]) + "|" for k in range(0, len(toks), 2)))


@FUZZ
@given(name=st.sampled_from(sorted(SPACES)), text=st.one_of(st.text(max_size=120), near_nb201))
def test_from_str_accepts_or_names_the_problem(name: str, text: str) -> None:
    space = SPACES[name]
    TALLY["from_str"] += 1
    try:
        arch = space.from_str(text)
    except InvalidArchError as err:
        assert one_line(err)
        TALLY["from_str clean error"] += 1
        return
    assert space.from_str(space.to_str(arch)) == arch


SHRINK_KEYS = ["budget", "max_rounds", "patience", "min_delta", "n_samples", "seeds_per_round", "neighbors_per_seed",
               "fresh_samples", "link_distance", "radius", "good_quantile", "max_pockets", "min_pocket_size", "method",
               "budgt", "size"]
values = st.one_of(st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                   st.text(max_size=8), st.none())


@FUZZ
@given(overrides=st.dictionaries(st.sampled_from(SHRINK_KEYS), values, max_size=4))
def test_shrink_settings_are_accepted_or_named(overrides: dict) -> None:
    shrink = {**OmegaConf.to_container(compose_cfg().shrink), **overrides}
    TALLY["shrink config"] += 1
    try:
        stage_configs(shrink)
    except ConfigError as err:
        assert one_line(err)
        TALLY["shrink config clean error"] += 1


@FUZZ
@given(override=st.text(alphabet=st.sampled_from("shrink.budget=seed+~[]{}:,'\" 0123abc"), max_size=25))
def test_raw_overrides_fail_in_hydra_or_compose(override: str) -> None:
    TALLY["raw override"] += 1
    try:
        first_values([override])  # what `python -m pipeline` checks before composing
        cfg = compose_cfg(override)
        stage_configs(OmegaConf.to_container(cfg.shrink, resolve=True))
    except (HydraException, OmegaConfBaseException, ConfigError) as err:
        TALLY["raw override clean error"] += 1
        assert str(err)


def _valid_shrunk_text() -> str:
    space = NB201Space()
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    return __import__("json").dumps(ShrunkSpace(space, [Pocket(0, arch, 90.0, 1, ((arch, 90.0),))]).to_dict())


VALID_SHRUNK = _valid_shrunk_text()


@FUZZ
@given(cut=st.integers(0, len(VALID_SHRUNK)), junk=st.binary(max_size=6), at=st.integers(0, len(VALID_SHRUNK)))
def test_corrupt_shrunk_space_files(cut: int, junk: bytes, at: int) -> None:
    corrupt_and_read("shrunk file", VALID_SHRUNK, cut, junk, at, ShrunkSpace.load, ShrunkSpaceError)


def corrupt_and_read(name: str, text: str, cut: int, junk: bytes, at: int, reader, error: type[Exception]) -> None:
    """Truncate ``text`` at ``cut``, overwrite bytes at ``at`` with ``junk``, read it back."""
    data = text.encode()[:cut]
    data = data[:at] + junk + data[at + len(junk) :]
    TALLY[name] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "file"
        path.write_bytes(data)
        try:
            reader(path)
        except error as err:
            assert one_line(err)
            TALLY[f"{name} clean error"] += 1


VALID_TABLE = ("arch,dataset,val_acc,test_acc\n"
               "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|,cifar10,90.1,89.9\n"
               "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,cifar10,10.0,10.0\n")


@FUZZ
@given(cut=st.integers(0, len(VALID_TABLE)), junk=st.binary(max_size=4), at=st.integers(0, len(VALID_TABLE)))
def test_corrupt_benchmark_tables(cut: int, junk: bytes, at: int) -> None:
    corrupt_and_read("table", VALID_TABLE, cut, junk, at, lambda p: read_table(p, NB201Space(), "cifar10"), EvaluatorError)


BENCH_HEADER = ["arch", "dataset", "seed", "val_acc", "test_acc", "params", "flops", "train_loss", "train_seconds",
                "equivalence", "trained_as"]
VALID_BENCH = ",".join(BENCH_HEADER) + "\n" + "".join(
    f"{a},digits,0,9{i}.5,9{i}.0,1000,2000,0.1,1.5,{a},{a}\n" for i, a in enumerate(
        ["width=8;activation=relu;depth=1", "width=32;activation=tanh;depth=2", "width=128;activation=relu;depth=3"]))


@FUZZ
@given(cut=st.integers(0, len(VALID_BENCH)), junk=st.binary(max_size=6), at=st.integers(0, len(VALID_BENCH)))
def test_corrupt_bench_tables_resume_or_name_the_problem(cut: int, junk: bytes, at: int) -> None:
    """What `pipeline.bench` does on start-up with a table a kill or a disk fault damaged."""
    from pipeline.bench import drop_torn_tail, read_done

    def resume(path: Path) -> None:
        drop_torn_tail(path)
        rows = read_done(path, BENCH_HEADER)
        assert path.read_bytes() == b"" or path.read_bytes().endswith(b"\n")
        assert all(set(r) == set(BENCH_HEADER) for r in rows)

    corrupt_and_read("bench table", VALID_BENCH, cut, junk, at, resume, ConfigError)


SHRUNK_FIELDS = st.sampled_from(["base_space.size", "size", "metric", "pockets.0.seed", "pockets.0.id",
                                 "pockets.0.radius", "pockets.0.seed_score", "pockets.0.members.0.arch",
                                 "pockets.0.members.0.score", "pockets.0.members.0.predicted", "pockets.0.region",
                                 "pockets.1", "pockets.0.members", "provenance"])
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 20000), st.floats(allow_nan=False),
                        st.text(max_size=12), near_nb201, st.lists(st.integers(0, 3), max_size=3),
                        st.just({"arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "score": 1.0}))


def set_field(data: dict, path: list[str], value: object) -> None:
    """Set (in a list: insert) the field at ``path``; skip a path an earlier change made unreachable."""
    node = data
    for key in path[:-1]:
        if isinstance(node, list) and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.setdefault(key, {})
        else:
            return
    if isinstance(node, list):
        node.insert(min(int(path[-1]), len(node)), value)
    elif isinstance(node, dict):
        node[path[-1]] = value


@FUZZ
@given(changes=st.lists(st.tuples(SHRUNK_FIELDS, JSON_VALUES), min_size=1, max_size=3))
def test_export_writes_every_format_or_nothing(changes: list) -> None:
    from pipeline.export import main as export_main

    data = __import__("json").loads(VALID_SHRUNK)
    for dotted, value in changes:
        set_field(data, dotted.split("."), value)
    TALLY["export"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "s.json", Path(tmp) / "out"
        source.write_text(__import__("json").dumps(data))
        code = export_main([str(source), "--out", str(out), "--format", "json", "--format", "list",
                            "--format", "naslib", "--format", "optuna"])
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert (code, len(written)) in ((0, 4), (2, 0))
        TALLY["export clean error"] += code == 2
        if code == 0:  # what was exported reads back as the same space
            assert ShrunkSpace.load(out / "shrunk_space.json").to_dict()["pockets"] == \
                ShrunkSpace.load(source).to_dict()["pockets"]


def test_zz_report_counts() -> None:
    """Print what the properties above tried (pytest -s)."""
    print("\nfuzz tally:", dict(TALLY))
