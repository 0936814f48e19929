"""How much of the class boundaries each way of painting draws (``class_contacts``), on the
training tiles of the five few-shot subsets: scribbles at the fractions the smoothness runs measured,
fully painted squares (64 and 32 pixels), full masks. It asks whether a label statistic separates the labels
where auto's smoothness loss helped from those where it did not (docs/relation-loss.md, "Fully painted squares").

    python benchmarks/painted_contacts.py   # -> results/cpu/painted-contacts.json (labels only, no training)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_pixrel.bench import data_path, load_data
from napari_pixrel.data import Plane
from napari_pixrel.loss_choice import painted_fraction

LABELS = [("full", None)] + [("scribbles", f) for f in (0.02, 0.10, 0.25, 0.50, 0.75, 0.90)] + [
    (kind, f) for kind in ("patches", "patches32") for f in (0.25, 0.50)]
OUT = Path(__file__).parent / "results/cpu/painted-contacts.json"


def class_contacts(planes: list[Plane]) -> float:
    """Of the sides of painted pixels that face a different label (a 4-neighbour in the image, unpainted or
    of another class), the share that face another class: how much of the boundaries between classes the
    labels draw. Near 0 for strokes, which keep inside their class's regions; 1 for full masks; in between
    for fully painted patches, whose edges run through unpainted pixels."""
    touching = edge = 0
    for p in planes:
        lab = p.labels
        for a, b in ((lab[1:], lab[:-1]), (lab[:, 1:], lab[:, :-1])):
            for this, other in ((a, b), (b, a)):
                differs = (this > 0) & (other != this)
                touching += int(np.count_nonzero(differs & (other > 0)))
                edge += int(np.count_nonzero(differs))
    return touching / edge if edge else 0.0


def main() -> None:
    data = load_data(str(data_path(None)))
    rows = []
    for kind, fraction in LABELS:
        for subset in range(len(data.split["few_shot"])):
            planes = data.planes(data.train_ids(subset), kind, fraction)
            rows.append({"labels": kind, "painted": fraction, "subset": subset,
                         "painted_fraction": painted_fraction(planes), "class_contacts": class_contacts(planes)})
        shares = [r["class_contacts"] for r in rows[-5:]]
        print(f"{kind} {fraction or 1:.0%}: class contacts {min(shares):.3f} to {max(shares):.3f}")
    OUT.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
