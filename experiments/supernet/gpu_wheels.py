"""Gather the wheels the device machine's image lacks (hydra-core, mlflow, jsonschema and their needs), small enough to carry.

The image (the device tool's KINDS.md) already holds torch, numpy, scipy, scikit-learn, pandas,
networkx, matplotlib and more; what it lacks is downloaded here for CPython 3.12 on x86-64 Linux.
Packages only an MLflow server or a Databricks / cloud store imports are left out, and mlflow's
wheel is rewritten without the web UI's JavaScript (7 MB): the pipeline logs to a SQLite store and
the UI is opened on this machine. Installed there with ``pip install --no-deps``.

Usage: python experiments/supernet/gpu_wheels.py DIR [PYTHON_VERSION (default 3.12, the image's)]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WANTED = ["hydra-core==1.3.8", "mlflow>=3,<4", "jsonschema>=4"]
# Already in the device image (KINDS.md, "Python packages already there"), so never carried.
IMAGE_PACKAGES = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless
optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip
pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson
six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision
tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug
wheel wrapt xarray xxhash yarl zipp"""
IN_IMAGE = set(IMAGE_PACKAGES.split())
# Imported only by an MLflow server, Google stores, model serving or the UI: not by a SQLite client
# (cryptography is: the SQLite store's model-registry tables import it).
SERVER_ONLY = {"google-auth", "pyasn1", "pyasn1-modules",
               "gunicorn", "docker", "huey", "skops", "flask", "flask-cors", "itsdangerous", "blinker", "graphene",
               "graphql-core", "graphql-relay", "uvicorn", "prettytable", "wcwidth"}
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"]


def project(wheel: Path) -> str:
    """Return the normalised project name of a wheel file."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def strip_ui(wheel: Path) -> None:
    """Rewrite mlflow's wheel without ``mlflow/server/js`` (the web UI), keeping RECORD consistent."""
    out = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename.startswith("mlflow/server/js/"):
                continue
            data = src.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line + b"\n" for line in data.splitlines() if not line.startswith(b"mlflow/server/js/"))
            dst.writestr(item, data)
    out.replace(wheel)


def main() -> None:
    """Download, filter and slim the wheels into DIR."""
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[-1])
    target, version = Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else "3.12"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # antlr4-python3-runtime 4.9.3 (hydra's pin) is published as a source archive only: build its pure wheel.
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "antlr4-python3-runtime==4.9.3",
                        "-w", tmp], check=True)
        platforms = [x for p in PLATFORMS for x in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--find-links", tmp, "--only-binary=:all:",
                        "--python-version", version, "--implementation", "cp", *platforms, "--platform", "any",
                        "-d", tmp, *WANTED], check=True)
        for wheel in Path(tmp).glob("*.whl"):
            if project(wheel) in IN_IMAGE | SERVER_ONLY:
                continue
            kept = target / wheel.name
            kept.write_bytes(wheel.read_bytes())
            if project(wheel) == "mlflow":
                strip_ui(kept)
    size = sum(w.stat().st_size for w in target.glob("*.whl"))
    print(f"{len(list(target.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB in {target}")


if __name__ == "__main__":
    main()
