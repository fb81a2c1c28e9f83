"""The layout ARCHITECTURE.md promises, checked on the source: no import circles, a leaf errors module,
capabilities instead of class tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

SPACE_PACKAGES = ("spaces.mobilenet", "spaces.nb201", "spaces.nb101", "spaces.nb_macro")


def modules() -> dict[str, Path]:
    """Return module name -> file of every module of pipeline/ and spaces/."""
    out = {}
    for file in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "spaces").rglob("*.py")]:
        name = ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = file
    return out


def imports(file: Path, known: dict[str, Path]) -> set[str]:
    """Return the project modules ``file`` imports anywhere (deferred imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {t for t in [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if t in known}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
    return found


def test_no_import_circle_outside_the_space_packages() -> None:
    known = modules()
    graph = nx.DiGraph([(name, target) for name, file in known.items() for target in imports(file, known)
                        if target != name])
    circles = [c for c in nx.simple_cycles(graph) if not all(m.startswith(SPACE_PACKAGES) for m in c)]
    assert not circles, circles[:3]


def test_the_errors_module_is_a_leaf_importing_no_pipeline_module() -> None:
    known = modules()
    assert not {m for m in imports(ROOT / "pipeline" / "errors.py", known) if m.startswith("pipeline")}


def test_the_runner_asks_evaluators_for_capabilities_instead_of_testing_their_class() -> None:
    concrete = {"BenchmarkEvaluator", "TrainEvaluator", "ProxyEvaluator", "EnsembleEvaluator"}
    offenders = [f"{file.relative_to(ROOT)}:{i}" for file in (ROOT / "pipeline").rglob("*.py")
                 if "evaluators" not in file.parts
                 for i, line in enumerate(file.read_text().splitlines(), 1)
                 if re.search(r"isinstance\(.*(" + "|".join(concrete) + r")", line)]
    assert not offenders, offenders


def test_the_search_command_offers_exactly_the_searchers_there_are() -> None:
    from pipeline.search import SEARCHER_NAMES
    from pipeline.searchers import SEARCHERS

    assert set(SEARCHER_NAMES) == set(SEARCHERS)


def test_no_module_of_the_pipeline_is_over_400_lines() -> None:
    long = {str(f.relative_to(ROOT)): n for f in (ROOT / "pipeline").rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 400}
    assert not long, long
