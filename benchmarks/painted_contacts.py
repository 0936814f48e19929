"""How much of the class boundaries each way of painting draws (``class_contacts``), on the
training tiles of the five few-shot subsets: scribbles at the fractions the smoothness runs measured,
fully painted squares (32, 64 and 128 pixels), full masks: where auto's smoothness loss helped and where it cost
(docs/relation-loss.md, "Fully painted squares"), the figures behind auto's SMOOTHNESS_CONTACTS.

    python benchmarks/painted_contacts.py   # -> results/cpu/painted-contacts.json (labels only, no training)

The last rows (``"subset": "sample"``) are the shipped synthetic sample's six images, painted with seed 0, to
show how the share moves with the data: its structures are smaller against the brush and the squares.
"""

from __future__ import annotations

import json
from pathlib import Path

from napari_pixrel.bench import PARTIAL_LABELS, data_path, load_data
from napari_pixrel.data import Plane
from napari_pixrel.loss_choice import class_contacts, painted_fraction
from napari_pixrel.sample_data import load_sample_data

LABELS = [("full", None)] + [("scribbles", f) for f in (0.02, 0.10, 0.25, 0.50, 0.75, 0.90)] + [
    (kind, f) for kind in ("patches", "patches32") for f in (0.25, 0.50)] + [("patches128", 0.50)]
SAMPLE_LABELS = [("scribbles", 0.90), ("patches", 0.50)]
OUT = Path(__file__).parent / "results/cpu/painted-contacts.json"


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
    images, masks, _ = load_sample_data()
    for kind, fraction in SAMPLE_LABELS:
        painted = PARTIAL_LABELS[kind][0](masks, fraction, seed=0)
        planes = [Plane(im[..., None].astype("float32"), lab) for im, lab in zip(images, painted, strict=True)]
        rows.append({"labels": kind, "painted": fraction, "subset": "sample",
                     "painted_fraction": painted_fraction(planes), "class_contacts": class_contacts(planes)})
        print(f"sample, {kind} {fraction:.0%}: class contacts {rows[-1]['class_contacts']:.3f}")
    OUT.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
