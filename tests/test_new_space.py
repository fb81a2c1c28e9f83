"""A new space is one package + one YAML: registered from a temporary folder, it runs the whole pipeline
(shrinkage, supernet training and search) without an edit to pipeline/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import HANG_GUARD_S, ROOT

PACKAGE = '''
"""Two-layer MLPs chosen per layer (width x activation): a throwaway space with a supernet."""

from typing import Any

from torch import nn

from spaces.base import CategoricalSpace

CHOICES = ("16-relu", "16-tanh", "48-relu", "48-tanh")


def _layer(features: int, choice: str) -> nn.Module:
    width, act = choice.split("-")
    return nn.Sequential(nn.Linear(features, int(width)), nn.ReLU() if act == "relu" else nn.Tanh(),
                         nn.Linear(int(width), 48))


class MlpSpace(CategoricalSpace):
    name = "mlp2"

    def __init__(self) -> None:
        super().__init__(["layer 1", "layer 2"], [CHOICES, CHOICES])

    def build_model(self, arch, input_shape, num_classes) -> Any:
        features = 1
        for dim in input_shape:
            features *= dim
        first, second = self.validate(arch)
        return nn.Sequential(nn.Flatten(), _layer(features, first), _layer(48, second), nn.Linear(48, num_classes))

    def build_supernet(self, input_shape, num_classes) -> Any:
        return Supernet(input_shape, num_classes)

    def load_subnet(self, net, supernet, codes) -> Any:
        net[1].load_state_dict(supernet.layers[0][int(codes[0])].state_dict())
        net[2].load_state_dict(supernet.layers[1][int(codes[1])].state_dict())
        net[3].load_state_dict(supernet.head.state_dict())
        return net

    def config(self) -> dict:
        return {"_target_": "mlp2.MlpSpace"}


class Supernet(nn.Module):
    def __init__(self, input_shape, num_classes) -> None:
        super().__init__()
        features = 1
        for dim in input_shape:
            features *= dim
        self.layers = nn.ModuleList([nn.ModuleList(_layer(features, c) for c in CHOICES),
                                     nn.ModuleList(_layer(48, c) for c in CHOICES)])
        self.head = nn.Linear(48, num_classes)

    def forward(self, x, codes):
        x = x.flatten(1)
        for layer, code in zip(self.layers, codes):
            x = layer[int(code)](x)
        return self.head(x)
'''


def test_a_space_from_a_temporary_folder_runs_the_pipeline_and_its_supernet(tmp_path: Path) -> None:
    (tmp_path / "mlp2").mkdir()
    (tmp_path / "mlp2" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "mlp2.yaml").write_text("_target_: mlp2.MlpSpace\n")
    cmd = [sys.executable, "-m", "pipeline", "--config-dir", str(tmp_path / "conf"), "space=mlp2", "dataset=digits",
           "evaluator.epochs=1", "shrink.budget=12", "shrink.sample.n_samples=6", "shrink.pockets.target_size=6",
           "supernet.enabled=true", "supernet.train.epochs=1", "supernet.search.eval_archs=3", "supernet.search.population=4",
           "supernet.search.generations=1", "progress=false", f"hydra.run.dir={tmp_path}/run",
           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best subnet found:" in done.stdout
    search = json.loads((tmp_path / "run" / "search" / "search.json").read_text())
    assert search["arch"].count("-") == 2 and (tmp_path / "run" / "search" / "best_subnet.pt").is_file()
