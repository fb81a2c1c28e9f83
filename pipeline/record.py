"""What one invocation records in MLflow, beyond the client calls: names, params, headline metrics, lineage.

The run's metrics sit under prefixes so the record reads at a glance: ``result/*`` describes the
emitted space (a handful, the same for every method), ``space/*`` its other figures, ``round/*``
the per-round series, ``supernet/*`` and ``search/*`` the one-shot stages (per-epoch curves under
``supernet/epoch/*``), ``run/*`` live counters while the run works.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError
from pipeline.tracking import Tracker, flatten, retry_locked

# emit-stage figure -> headline name under result/ (ground-truth ones only when the run has ground truth)
HEADLINE = {"shrunk_size": "size", "gt_mean": "mean_test_acc", "gt_best": "best_test_acc", "regret": "regret",
            "recall_top1pct": "recall_top1pct", "mean_pocket_score": "mean_score"}
REPEATS = ("size", "round")  # size repeats shrunk_size; the chosen round is a tag and the round/chosen series
TRUTH_FIGURES = ("result/mean_test_acc", "result/best_test_acc", "result/regret", "result/recall_top1pct",
                 "space/gt_", "space/shrink_index", "space/recall_", "space/kendall_tau")  # need ground truth
HIDDEN_GROUPS = ("tracking", "progress", "cache_dir", "resume", "hydra", "objective")  # bookkeeping, not results
NAMED_KEYS = ("shrink", "space", "+space", "dataset", "evaluator", "seed")  # already in the run name
UNNAMED_PREFIXES = ("tracking.", "hydra.", "evaluator.path", "progress", "resume", "cache_dir", "ground_truth")


def param_text(value: Any) -> str:
    """Return a param value as text, floats without binary noise (90.29, not 90.28999999999999)."""
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def user_params(cfg: DictConfig, used: Iterable[str]) -> dict[str, str]:
    """Return the user-facing config as flat params: no class paths, no bookkeeping, no unset values,
    and of ``shrink.*`` / ``supernet.*`` / ``dataset.*`` only the keys in ``used`` (settings that acted)."""
    used = set(used)
    return {k: v for k, v in plain_params(cfg).items()
            if not k.startswith(("shrink.", "supernet.", "dataset.")) or k in used}


def plain_params(cfg: DictConfig) -> dict[str, str]:
    """Return the config as flat params without class paths, bookkeeping groups and unset values."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True), text=param_text)
    return {k: v for k, v in flat.items()
            if k.split(".")[0] not in HIDDEN_GROUPS and not k.endswith("_target_") and v != "None"}


def result_metrics(final: Mapping[str, float], spent: int) -> dict[str, float]:
    """Split the emit stage's figures into the headline ``result/*`` and the rest as ``space/*``."""
    # Six significant digits: the runs table shows values as they are, and 90.2279 reads better than 90.22786667.
    out = {f"result/{HEADLINE[k]}": float(f"{v:.6g}") for k, v in final.items() if k in HEADLINE}
    out["result/evaluations"] = float(spent)
    out.update({f"space/{k}": v for k, v in final.items() if k not in HEADLINE and k not in REPEATS})
    return out


def check_objective(name: str, has_truth: bool, has_supernet: bool) -> None:
    """Refuse, before any evaluation, an objective this run cannot produce."""
    prefixes = ("result/", "space/") + (("supernet/", "search/") if has_supernet else ())
    if not name.startswith(prefixes):
        raise ConfigError(f"objective={name!r} is not a figure of this run; use a metric under "
                          f"{', '.join(prefixes)} e.g. objective=result/mean_score")
    if name.startswith(TRUTH_FIGURES) and not has_truth:
        raise ConfigError(f"objective={name!r} needs ground truth, which this run has none of; set ground_truth=PATH "
                          "(a benchmark table) or use objective=result/mean_score")


def objective(name: str, figures: Mapping[str, float]) -> float:
    """Return the run's objective from its figures, naming the choices when it has no such figure."""
    if name not in figures:
        raise ConfigError(f"objective={name!r}: this run has no such figure; it has {', '.join(sorted(figures))}")
    return float(figures[name])


def name_overrides(overrides: Iterable[str], swept: Iterable[str] | None) -> list[str]:
    """Return the overrides worth a place in the run name: a sweep's varying keys, else the user's own."""
    keys = set(swept) if swept is not None else None
    picked = []
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if (keys is not None and key not in keys) or key in NAMED_KEYS or key.startswith(UNNAMED_PREFIXES):
            continue
        picked.append(f"{key.split('.')[-1]}={value[:20]}")
    return picked


def run_name(method: str, space: str, data: str, seed: int, extra: Iterable[str]) -> str:
    """Return a run name that tells runs apart: method, space, data, seed and the varying overrides."""
    return "-".join([method, space, data, f"s{seed}"]) + "".join(f" {e}" for e in extra)


def describe(final: Mapping[str, float], space_size: int, space: str, spent: int, reason: str) -> str:
    """Return the run's description (markdown): what was emitted and how good it is."""
    size = int(final["shrunk_size"])
    lines = [f"**Emitted** round {int(final['round'])}: {size:,} archs ({size / space_size:.3%} of {space}), "
             f"{int(final['pockets'])} pockets, {spent:,} evaluations; stopped by {reason}."]
    if "gt_mean" in final:
        lines.append(f"**Ground truth** (judges only): mean {final['gt_mean']:.2f} vs full space "
                     f"{final['gt_full_mean']:.2f}; best {final['gt_best']:.2f}, regret {final['regret']:.3f}, "
                     f"top-1% recall {final['recall_top1pct']:.2f}.")
    return "\n\n".join(lines)


def git(*args: str) -> str | None:
    """Return what ``git ARGS`` prints in the project's checkout, or None outside one."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_sha() -> str:
    """Return the project's git commit, or 'unknown' outside a checkout."""
    return git("rev-parse", "HEAD") or "unknown"


def lineage_tags() -> dict[str, str]:
    """Return MLflow's standard context tags (user, source, git commit, branch, remote) for this process.

    Made here rather than by ``mlflow.tracking.context.registry``, whose git lookup (GitPython) adds
    about 1.7 s to every start and whose source name we would override anyway.
    """
    tags = {"mlflow.user": getpass.getuser(), "mlflow.source.name": "python -m pipeline",
            "mlflow.source.type": "LOCAL",
            "mlflow.source.entryPoint": " ".join(["python -m pipeline", *sys.argv[1:]])[:5000]}
    found = {"mlflow.source.git.commit": git("rev-parse", "HEAD"),
             "mlflow.source.git.branch": git("rev-parse", "--abbrev-ref", "HEAD"),
             "mlflow.source.git.repoURL": git("config", "--get", "remote.origin.url")}
    return {**tags, **{k: v for k, v in found.items() if v}}


def file_digest(path: Path) -> str:
    """Return the first 16 hex digits of a file's SHA-256."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def config_digest(settings: Mapping[str, Any]) -> str:
    """Return the first 16 hex digits of a config's SHA-256 (a dataset known by how it is loaded)."""
    text = ";".join(f"{k}={v}" for k, v in sorted(flatten(dict(settings)).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def log_inputs(tracker: Tracker, run_id: str, cfg: DictConfig, table: str | None, dataset: Any = None) -> None:
    """Log the run's data as MLflow dataset inputs: the benchmark table and ground truth (by file digest),
    else the image dataset ``dataset`` under its own name (by the settings that fix its images)."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    found: list[tuple[Any, str]] = []
    truth = cfg.get("ground_truth")
    for path, context in ((table, "search"), (None if truth in (None, "auto") else str(truth), "ground_truth")):
        if path and Path(path).expanduser().is_file():
            file = Path(path).expanduser().resolve()
            found.append((MetaDataset(LocalArtifactDatasetSource(str(file)), name=file.name, digest=file_digest(file)),
                          context))
    if not found and dataset is not None:
        settings = dataset.settings()
        root = Path(str(getattr(dataset, "root", None) or ".")).expanduser().resolve()
        found.append((MetaDataset(LocalArtifactDatasetSource(str(root)), name=str(settings["name"]),
                                  digest=config_digest(settings)), "training"))
    tracker.inputs(run_id, found)


def log_subnet(tracker: Tracker, run_id: str, space: Any, saved: Mapping[str, Any], example: Any) -> str:
    """Log the search's best subnet as an MLflow PyTorch model (signature, input example); return its model id.

    ``saved`` is the search stage's ``best_subnet.pt`` (arch, shapes, weights); ``example`` a few
    input images. ``mlflow.pytorch.load_model(f"runs:/{run_id}/best_subnet")`` loads it back.
    """
    import tempfile

    import mlflow.pytorch
    import torch
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import infer_signature

    net = space.build_model(space.from_str(saved["arch"]), tuple(saved["input_shape"]), int(saved["num_classes"]))
    net.load_state_dict(saved["state_dict"])
    net.eval()
    x = example.numpy().astype("float32")
    with torch.no_grad():
        signature = infer_signature(x, net(example).numpy())
    client = tracker.client
    model = client.create_logged_model(tracker.experiment_id, name="best_subnet", source_run_id=run_id,
                                       params={"arch": saved["arch"]}, tags={"space": space.name})
    with tempfile.TemporaryDirectory() as folder:
        # pickle, not MLflow's torch.export default: the loaded model stays an nn.Module to evaluate or fine-tune.
        mlflow.pytorch.save_model(net, f"{folder}/model", signature=signature, input_example=x,
                                  serialization_format="pickle",
                                  pip_requirements=[f"torch>={torch.__version__.split('+')[0]}"])
        client.log_model_artifacts(model.model_id, f"{folder}/model")
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])
    return model.model_id


VIEW = "headline"  # the experiment's shared MLflow view: the runs table with the headline columns



def column_px(name: str) -> int:
    """Return a runs-table column width that shows ``name`` whole (MLflow's header font: ~7 px a character)."""
    return max(60, 7 * len(name) + 30)


def headline_view(tracker: Tracker) -> str:
    """Save (once) the experiment's shared ``headline`` view and return its address.

    MLflow's runs table shows no metric columns until a user picks them; a shared view (an
    experiment tag the UI reads) opens it with the ``result/*`` columns, runs sorted by mean
    test accuracy (which also lists a sweep's jobs flat, not folded under the sweep run).
    """
    # No Source / Dataset columns: with MLflow's side panel they pushed every metric off a 1600 px screen; the
    # columns in this order and each as wide as its name (MLflow's default cut them to "result/mean_te").
    order = ("mean_test_acc", "regret", "recall_top1pct", "size", "best_test_acc", "mean_score", "evaluations")
    columns = ["tags.`method`", "tags.`seed`", *[f"metrics.`result/{name}`" for name in order]]
    state = {"searchFilter": "", "orderByKey": "metrics.`result/mean_test_acc`", "orderByAsc": False,
             "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
             "selectedColumns": columns, "columnOrder": columns, "runsHiddenMode": "FIRST_20_RUNS",
             "columnWidths": {c: column_px(c.split("`")[1]) for c in columns},
             "viewMaximized": False, "runListHidden": False, "isAccordionReordered": False,
             "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None, "groupsExpanded": {},
             "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""}}
    tag = f"mlflow.sharedViewState.{VIEW}"
    saved = tracker.client.get_experiment(tracker.experiment_id).tags.get(tag)
    packed = "deflate;" + base64.b64encode(zlib.compress(json.dumps(state).encode())).decode()  # as the UI writes it
    if saved is None or json.loads(saved).get("state") != packed:  # a view saved by an older release is replaced
        now = int(time.time() * 1000)
        value = {"name": VIEW, "createdAt": now, "updatedAt": now, "state": packed, "columns": columns}
        retry_locked(tracker.client.set_experiment_tag, tracker.experiment_id, tag, json.dumps(value))
    return tracker.url(None, f"?viewStateShareKey={VIEW}")
