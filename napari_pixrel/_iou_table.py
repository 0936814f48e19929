"""Per-class IoU table in the dock: one row per class plus mIoU, one column per (run, image set)."""

from __future__ import annotations

import math

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


class IouTable(QTableWidget):
    """Shows IoU dicts ({class name: IoU, "mIoU": ...}) as percentages; "-" where a class has no IoU."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def show_iou(self, columns: dict[str, dict | None], class_names) -> None:
        """``columns``: header -> IoU dict (None: no such set, e.g. no validation images)."""
        rows = list(class_names) + ["mIoU"]
        self.setRowCount(len(rows))
        self.setColumnCount(len(columns))
        self.setVerticalHeaderLabels(rows)
        self.setHorizontalHeaderLabels(list(columns))
        for c, iou in enumerate(columns.values()):
            for r, name in enumerate(rows):
                value = (iou or {}).get(name, math.nan)
                self.setItem(r, c, QTableWidgetItem("-" if math.isnan(value) else f"{100 * value:.1f}"))
        self.resizeRowsToContents()
        rows_height = sum(self.rowHeight(r) for r in range(self.rowCount()))
        self.setFixedHeight(self.horizontalHeader().sizeHint().height() + rows_height + 2 * self.frameWidth())

    def values(self) -> dict[str, dict[str, str]]:
        """What the table shows, {column header: {row header: text}} (for tests and screenshots)."""
        return {
            self.horizontalHeaderItem(c).text(): {
                self.verticalHeaderItem(r).text(): self.item(r, c).text() for r in range(self.rowCount())
            }
            for c in range(self.columnCount())
        }
