"""Model files: ``.npz`` with a JSON architecture, loaded without pickle.

Layout of the archive:

- ``__chainrule__``: a JSON string with ``format``, ``format_version``,
  ``library_version``, ``dtype``, ``input_shape``, ``layers`` (type and config of
  each), ``loss``, ``optimizer`` (with its step count) and free ``metadata``;
- one array per parameter under its dotted name (``layers.2.W``), and one per
  buffer (``layers.3.running_mean``: state saved but not trained);
- the optimizer's per-parameter state under ``optimizer.<i>.<key>``.

Loading never unpickles (an array of Python objects is refused unread, so
opening a file never runs code), rebuilds only registered layer types, and
checks every name, shape and dtype against the architecture before reading
any data (:mod:`chainrule.io.archive`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from chainrule import backend
from chainrule._version import __version__
from chainrule.atomic import atomic_write
from chainrule.config import describe
from chainrule.errors import ModelFileError
from chainrule.io.archive import NpzReader
from chainrule.layers.base import Layer, layer_from_config
from chainrule.losses.base import loss_from_config
from chainrule.model.sequential import Sequential
from chainrule.model.training_state import TrainingState
from chainrule.optim.base import Optimizer, optimizer_from_config
from chainrule.types import Shape

FORMAT = "chainrule-model"
#: 1.1 added buffers (batch-norm running statistics); 1.0 files read unchanged
FORMAT_VERSION = (1, 1)
HEADER = "__chainrule__"
#: ``major.minor``, both decimal
VERSION_PATTERN = re.compile(r"[0-9]+\.[0-9]+")
#: the JSON description of even a large model is a few kB
MAX_HEADER_BYTES = 16 << 20


def save_model(
    model: Sequential,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    include_optimizer: bool = True,
    include_training_state: bool = False,
) -> None:
    """Write ``model`` to ``path`` atomically (a crash never leaves half a file).

    ``include_training_state`` adds ``model.training_state`` (epoch, random
    generator states, history, callback counters): a checkpoint from which
    ``fit(resume=True)`` continues exactly.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"save_model expects a Sequential, got {type(model).__name__}")
    if not model.built:
        raise ValueError("save_model: the model is not built yet (no input shape)")
    arrays = {name: backend.to_numpy(p.data) for name, p in model.named_parameters()}
    arrays.update(
        (name, backend.to_numpy(value)) for name, value in model.named_buffers()
    )
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(
            f"save_model: metadata must be a dict, got {type(metadata).__name__}"
        )
    optimizer = model.optimizer if include_optimizer else None
    if optimizer is not None:
        for i, state in enumerate(optimizer.state):
            for key, value in state.items():
                arrays[f"optimizer.{i}.{key}"] = backend.to_numpy(value)
    header = {
        "format": FORMAT,
        "format_version": ".".join(map(str, FORMAT_VERSION)),
        "library_version": __version__,
        "dtype": model.dtype.name,
        "input_shape": list(model.input_shape or ()),
        "layers": [describe(layer) for layer in model.layers],
        "loss": describe(model.loss) if model.loss is not None else None,
        "optimizer": (
            {**describe(optimizer), "iterations": optimizer.iterations}
            if optimizer is not None
            else None
        ),
        "metadata": metadata or {},
    }
    if include_training_state:
        if model.training_state is None:
            raise ValueError("save_model: the model has no training state to save")
        header["training"] = model.training_state.to_json()
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "save_model: metadata and training history must be plain JSON data "
            f"with finite numbers ({exc})"
        ) from exc
    arrays[HEADER] = np.array(text)
    with atomic_write(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON description stored in a model file (architecture, metadata)."""
    with NpzReader(path) as archive:
        return _header(archive, path)


def load_model(path: str | os.PathLike[str]) -> Sequential:
    """Rebuild the model saved at ``path``; ``ModelFileError`` if anything is off."""
    with NpzReader(path) as archive:
        header = _header(archive, path)
        try:
            layers = [layer_from_config(d) for d in header["layers"]]
            input_shape = tuple(header["input_shape"])
            expected = _array_shapes(layers, input_shape)
            dtype = backend.as_float_dtype(header["dtype"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{path}: bad architecture description: {exc}"
            ) from exc
        for name, (kind, shape) in expected.items():
            if name not in archive.members:
                raise ModelFileError(f"{path}: {kind} {name} is missing")
            archive.check(name, shape, dtype, what=kind)
        try:
            model = Sequential(layers, input_shape=input_shape, dtype=dtype)
            loss = loss_from_config(header["loss"]) if header.get("loss") else None
            opt_desc = header.get("optimizer") or {}
            if not isinstance(opt_desc, dict):
                raise TypeError(f"optimizer must be an object, got {opt_desc!r}")
            optimizer = None
            if opt_desc:
                optimizer = optimizer_from_config(
                    {"type": opt_desc.get("type"), "config": opt_desc.get("config", {})}
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{path}: bad architecture description: {exc}"
            ) from exc
        names = set(archive.files) - {HEADER}
        for name, p in model.named_parameters():
            if name not in names:
                raise ModelFileError(f"{path}: parameter {name} is missing")
            value = archive.read(name, p.shape, p.dtype, what="parameter")
            if not np.isfinite(value).all():
                raise ModelFileError(
                    f"{path}: parameter {name} contains NaN or infinite values"
                )
            p.data[...] = backend.xp().asarray(value)
            names.discard(name)
        for name, buffer in model.named_buffers():
            value = archive.read(name, buffer.shape, buffer.dtype, what="buffer")
            if not np.isfinite(value).all():
                raise ModelFileError(
                    f"{path}: buffer {name} contains NaN or infinite values"
                )
            buffer[...] = backend.xp().asarray(value)
            names.discard(name)
        for i, layer in enumerate(model.layers):
            try:
                layer.check_buffers()
            except ValueError as exc:
                raise ModelFileError(f"{path}: layers.{i}: {exc}") from exc
        if optimizer is not None:
            _restore_optimizer(optimizer, opt_desc, archive, names, model, path)
        unexpected = sorted(names) + archive.others
        if unexpected:
            raise ModelFileError(
                f"{path}: unexpected arrays not in the architecture: {unexpected}"
            )
    if loss is not None:
        model.compile(loss, optimizer)
    if header.get("training") is not None:
        try:
            model.training_state = TrainingState.from_json(header["training"])
            model.set_rng_states(model.training_state.layer_rngs)
        except ValueError as exc:
            raise ModelFileError(f"{path}: bad training state: {exc}") from exc
    return model


def save_checkpoint(
    model: Sequential,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save weights, optimizer state and training state, for ``fit(resume=True)``."""
    save_model(
        model, path, metadata, include_optimizer=True, include_training_state=True
    )


def _array_shapes(
    layers: list[Layer], input_shape: Shape
) -> dict[str, tuple[str, Shape]]:
    """Kind (parameter or buffer) and shape of every array, without allocating any."""
    if not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape
    ):
        raise ValueError(
            f"input_shape must be a tuple of positive integers, got {input_shape}"
        )
    arrays: dict[str, tuple[str, Shape]] = {}
    shape = input_shape
    for i, layer in enumerate(layers):
        try:
            output_shape = layer.compute_output_shape(shape)  # checks the input
            for kind, shapes in (
                ("parameter", layer.parameter_shapes(shape)),
                ("buffer", layer.buffer_shapes(shape)),
            ):
                for name, array_shape in shapes.items():
                    arrays[f"layers.{i}.{name}"] = (kind, array_shape)
            shape = output_shape
        except ValueError as exc:
            raise ValueError(f"layer {i}: {exc}") from exc
    return arrays


def _restore_optimizer(
    optimizer: Optimizer,
    desc: dict[str, Any],
    archive: NpzReader,
    names: set[str],
    model: Sequential,
    path: object,
) -> None:
    params = model.parameters()
    state: list[dict[str, Any]] = [{} for _ in params]
    for name in sorted(n for n in names if n.startswith("optimizer.")):
        parts = name.split(".")
        if (
            len(parts) != 3
            or not parts[1].isdigit()
            or int(parts[1]) >= len(params)
            or parts[2] not in optimizer.state_keys
        ):
            raise ModelFileError(
                f"{path}: unexpected optimizer array {name} (expected "
                f"optimizer.<parameter index>.<one of {list(optimizer.state_keys)}>)"
            )
        i = int(parts[1])
        value = archive.read(
            name, params[i].shape, params[i].dtype, what="optimizer state"
        )
        state[i][parts[2]] = backend.xp().asarray(value)
        names.discard(name)
    if any(state):
        optimizer.state = state
    iterations = desc.get("iterations", 0)
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, int)
        or iterations < 0
    ):
        raise ModelFileError(
            f"{path}: optimizer iterations must be >= 0, got {iterations!r}"
        )
    optimizer.iterations = iterations


def _header(archive: Any, path: object) -> dict[str, Any]:
    if HEADER not in archive.files:
        raise ModelFileError(
            f"{path}: not a chainrule model file (no {HEADER} entry); "
            "it may be a plain NumPy archive"
        )
    raw = archive.read(HEADER, max_bytes=MAX_HEADER_BYTES)
    if raw.dtype.kind != "U" or raw.shape != ():
        raise ModelFileError(f"{path}: {HEADER} must be a JSON string")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: {HEADER} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[…" nested deeper than the parser goes
        raise ModelFileError(f"{path}: {HEADER} is nested too deeply") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a {FORMAT} file")
    version = header.get("format_version")
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise ModelFileError(
            f"{path}: bad format_version {version!r} (expected a string like '1.1')"
        )
    major = int(version.split(".")[0])
    if major > FORMAT_VERSION[0]:
        raise ModelFileError(
            f"{path}: format version {version} is newer than this chainrule "
            f"({__version__}) reads ({FORMAT_VERSION[0]}.x); upgrade chainrule"
        )
    for key, kind in (("layers", list), ("input_shape", list), ("dtype", str)):
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"{path}: {key} must be a {kind.__name__}")
    if not isinstance(header.get("library_version", ""), str):
        raise ModelFileError(f"{path}: library_version must be a str")
    if not isinstance(header.get("metadata", {}), dict):
        raise ModelFileError(f"{path}: metadata must be an object")
    return header


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "load_model",
    "read_header",
    "save_checkpoint",
    "save_model",
]
