"""Write the per-epoch metrics to a CSV file or a JSON history, atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from chainrule.atomic import atomic_write_bytes
from chainrule.model.callback import Callback


class CSVLogger(Callback):
    """One row per epoch (``epoch`` then every logged metric) in a CSV file.

    The file is rewritten atomically after each epoch, so it is always a
    complete table. On ``fit(resume=True)`` the rows of the earlier epochs come
    back from the training state.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if not logs.get("initial_epoch"):
            self.rows = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.rows.append({"epoch": epoch, **logs})
        fields: list[str] = []
        for row in self.rows:
            fields += [k for k in row if k not in fields]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.path, text.getvalue().encode())

    def get_state(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state.get("rows", [])]


class JSONLogger(Callback):
    """The whole history so far as JSON (``{"epoch": [...], "loss": [...], ...}``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.history: dict[str, list[Any]] = {}

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if not logs.get("initial_epoch"):
            self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for key, value in {"epoch": epoch, **logs}.items():
            self.history.setdefault(key, []).append(value)
        atomic_write_bytes(self.path, json.dumps(self.history, indent=1).encode())

    def get_state(self) -> dict[str, Any]:
        return {"history": self.history}

    def set_state(self, state: dict[str, Any]) -> None:
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}


__all__ = ["CSVLogger", "JSONLogger"]
