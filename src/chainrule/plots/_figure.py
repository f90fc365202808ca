"""The one place that touches matplotlib: import it lazily, make figures, save them.

Figures are plain ``matplotlib.figure.Figure`` objects, never ``pyplot``
figures: nothing is registered with a GUI, the caller's backend is neither
needed nor changed (a notebook keeps its inline plots), and a figure is freed
like any other object once saved. PNG is rendered by Agg, SVG by matplotlib's
SVG writer.

Sizes are given in pixels at :data:`DPI`, so a PNG is exactly as many pixels as
documented and an SVG as many points (``pixels · 72 / DPI``). Every size is a
multiple of 25 pixels: ``pixels / DPI`` is then a multiple of 1/4 inch, exact in
binary, and Agg's truncation to whole pixels cannot lose one.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from chainrule.atomic import atomic_write_bytes
from chainrule.errors import ChainruleError

#: resolution of every figure: sizes in pixels are inches times this
DPI = 100
#: what a plot file name may end with, and the matplotlib format it selects
FORMATS = {".png": "png", ".svg": "svg"}
INSTALL_HINT = "plots need matplotlib: pip install 'chainrule[plot]'"


class MissingMatplotlibError(ChainruleError, ImportError):
    """matplotlib is not installed; the message says how to install it."""


def require_matplotlib() -> Any:
    """The ``matplotlib`` package, or :class:`MissingMatplotlibError`.

    Its ``figure``, ``colors`` and ``ticker`` modules are loaded too.
    """
    try:
        import matplotlib
        import matplotlib.colors
        import matplotlib.figure
        import matplotlib.ticker
    except ImportError as exc:
        raise MissingMatplotlibError(f"{INSTALL_HINT} ({exc})") from exc
    return matplotlib


def check_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a ``Path`` if it ends in ``.png`` or ``.svg``, else ``ValueError``.

    Called before any work, so a typo in the name costs no forward pass.
    """
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ValueError(
            f"{what}: the file name must end in .png or .svg, got {str(path)!r}"
        )
    if target.is_dir():
        raise ValueError(f"{what}: {str(path)!r} is a directory; give a file name")
    return target


def new_figure(width_px: int, height_px: int) -> Any:
    """A blank figure of ``width_px × height_px`` pixels with constrained layout."""
    return require_matplotlib().figure.Figure(
        figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained"
    )


def save(fig: Any, path: Path) -> Path:
    """Render ``fig`` in the format ``path``'s suffix names and write it atomically."""
    buffer = io.BytesIO()
    image_format = FORMATS[path.suffix.lower()]
    # no date in the metadata: the same figure gives the same bytes
    metadata = {"Date": None} if image_format == "svg" else {}
    fig.savefig(buffer, format=image_format, dpi=DPI, metadata=metadata)
    atomic_write_bytes(path, buffer.getvalue())
    return path


__all__ = [
    "DPI",
    "FORMATS",
    "INSTALL_HINT",
    "MissingMatplotlibError",
    "check_path",
    "new_figure",
    "require_matplotlib",
    "save",
]
