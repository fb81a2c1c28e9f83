"""Draw the stage graph of ARCHITECTURE.md from the code itself: each stage's NEEDS / MAKES and the methods' plans.

    python experiments/architecture/draw.py   # writes experiments/architecture/stage_graph.png
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.build import STAGES  # noqa: E402
from pipeline.plan import method_plans  # noqa: E402

PLANS = method_plans()  # each method's plan, as conf/shrink/<method>.yaml declares it

# Columns follow the data flow; rows keep the alternatives of a column apart.
POSITION = {"sample": (0, 1.0), "explore": (0, -1.0), "evaluate": (1.3, 0.0), "graph": (2.6, 1.0),
            "select": (2.6, -1.0), "refine": (2.6, -2.2), "pockets": (3.9, 1.0), "emit": (5.2, 0.0),
            "supernet": (6.5, 0.0), "search": (7.8, 0.0)}


FINAL = ("emit", "supernet", "search")


def together(a: str, b: str) -> bool:
    """Tell whether one run can hold both stages (a method's plan has both, or one runs after every plan)."""
    return a in FINAL or b in FINAL or any({a, b} <= set(p.first + p.later) for p in PLANS.values())


def flows() -> list[tuple[str, str, str]]:
    """Return (maker, reader, artifact) for every artifact a stage reads and another stage of its run makes."""
    return [(maker, reader, name) for reader, module in STAGES.items() for name in module.NEEDS
            for maker, other in STAGES.items() if name in other.MAKES and maker != reader and together(maker, reader)]


def main() -> None:
    """Draw the stages, the artifacts between them and which methods run which stages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 6.2))
    for maker, reader, name in flows():
        (x0, y0), (x1, y1) = POSITION[maker], POSITION[reader]
        back = x1 <= x0  # an artifact read in the next round (pockets -> explore)
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "-|>", "color": "tab:red" if back else "0.45",
                    "shrinkA": 24, "shrinkB": 24, "connectionstyle": "arc3,rad=0.35" if back else "arc3,rad=0.08"})
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + (0.55 if back else 0.08), name, fontsize=7, ha="center",
                color="tab:red" if back else "0.3")
    for stage, (x, y) in POSITION.items():
        methods = [m for m, plan in PLANS.items() if stage in plan.first + plan.later]
        label = stage + ("\n" + ", ".join(methods) if methods and len(methods) < len(PLANS) else "")
        ax.text(x, y, label, ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "fc": "lightyellow" if x < 5 else "lightblue", "ec": "0.4"})
    ax.text(1.95, 2.0, "rounds (repeated until budget / plateau)", ha="center", fontsize=10)
    ax.text(6.5, 1.2, "once, after the rounds", ha="center", fontsize=10)
    ax.set(xlim=(-0.8, 8.6), ylim=(-2.8, 2.4), xticks=[], yticks=[],
           title="Stages and the artifacts they exchange (from NEEDS / MAKES; red: read in the next round)")
    fig.tight_layout()
    out = Path(__file__).with_name("stage_graph.png")
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
