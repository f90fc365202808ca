"""``Augment``: random changes to a training batch, drawn from a given generator.

``Augment(...)(x, rng)`` returns a changed copy of the image batch ``x`` with the
same shape and dtype: a geometric warp (translation, rotation, scaling, elastic
distortion, horizontal flip; one bilinear resampling, see ``geometric.py``)
then colour jitter (``colour.py``). Every random number comes from ``rng``, in a
fixed order, so a seed gives the same batch every time. ``Sequential.fit``
(``augment=``) applies it to each training batch, never to validation or test
data. Labels are never touched: the transforms must keep the class (no flips
for digits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from chainrule.augment.colour import jitter
from chainrule.augment.geometric import affine_grid, elastic_field, resample
from chainrule.types import Array

MODES = ("constant", "edge")
#: what counts as a number: Python's and NumPy's (bool excluded separately)
REAL = (int, float, np.integer, np.floating)


@dataclass(frozen=True)
class Augment:
    """Random training-time changes to images ``(N, H, W)`` or ``(N, C, H, W)``.

    - ``translate``: largest shift, as a fraction of the height and width
      (``0.1`` on 28x28: up to 2.8 px each way);
    - ``rotate``: largest rotation in degrees, either way;
    - ``scale``: zoom factor drawn from ``[1 - scale, 1 + scale]``;
    - ``elastic_alpha``, ``elastic_sigma``: Simard et al. (2003)'s elastic
      distortion, a displacement field of uniform noise smoothed by a Gaussian
      of ``sigma`` px and scaled by ``alpha`` px (0: off; they used 34 and 4);
    - ``flip``: probability of a left-right mirror (natural images only);
    - ``brightness``, ``contrast``, ``saturation``: colour jitter strengths,
      factors drawn from ``[1 - s, 1 + s]`` (saturation needs 3 channels);
    - ``mode``: what lies outside the image, ``"constant"`` (``fill``) or
      ``"edge"`` (the nearest edge pixel);
    - ``value_range``: the pixel range results are clipped to (0-255 as the
      loaders give).

    Every strength 0 is the identity (``x`` itself is returned).

    Pixel values are clipped to ``value_range``, 0-255 by default, the scale of
    the loaders' uint8 images; give ``value_range=(0, 1)`` for float images in
    [0, 1], or brightness can push them past 1.
    """

    translate: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0
    flip: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    mode: str = "constant"
    fill: float = 0.0
    value_range: tuple[float, float] = (0.0, 255.0)

    def __post_init__(self) -> None:
        for name, limit in (
            ("translate", 1.0),
            ("rotate", 180.0),
            ("scale", 1.0),
            ("elastic_alpha", math.inf),
            ("flip", 1.0),
            ("brightness", 1.0),
            ("contrast", 1.0),
            ("saturation", 1.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, REAL):
                raise TypeError(f"Augment: {name} must be a number, got {value!r}")
            if (
                not 0 <= value <= limit
                or not math.isfinite(value)
                or (name == "scale" and value >= 1)
            ):
                bound = (
                    "< 1"
                    if name == "scale"
                    else ("finite" if limit == math.inf else f"<= {limit:g}")
                )
                raise ValueError(
                    f"Augment: {name} must be >= 0 and {bound}, got {value}"
                )
            object.__setattr__(self, name, float(value))
        # a non-number is a TypeError, a number out of range a ValueError
        sigma, fill = self.elastic_sigma, self.fill
        for name, value in (("elastic_sigma", sigma), ("fill", fill)):
            if isinstance(value, bool) or not isinstance(value, REAL):
                raise TypeError(f"Augment: {name} must be a number, got {value!r}")
        if not 0 < sigma < math.inf:
            raise ValueError(
                f"Augment: elastic_sigma must be > 0 pixels and finite, got {sigma!r}"
            )
        if not math.isfinite(fill):
            raise ValueError(f"Augment: fill must be a finite number, got {fill!r}")
        object.__setattr__(self, "elastic_sigma", float(sigma))
        object.__setattr__(self, "fill", float(fill))
        if self.mode not in MODES:
            raise ValueError(
                f"Augment: mode must be one of {', '.join(MODES)}, got {self.mode!r}"
            )
        pair = self.value_range
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not all(isinstance(v, REAL) and not isinstance(v, bool) for v in pair)
        ):
            raise TypeError(
                "Augment: value_range must be a pair of numbers (low, high), "
                f"got {pair!r}"
            )
        lo, hi = pair
        if not lo < hi:
            raise ValueError(
                f"Augment: value_range must be (low, high) with low < high, "
                f"got {self.value_range!r}"
            )
        object.__setattr__(self, "value_range", (float(lo), float(hi)))

    @property
    def geometric(self) -> bool:
        """Whether any warp is on (translation, rotation, scale, elastic, flip)."""
        return bool(
            self.translate
            or self.rotate
            or self.scale
            or self.elastic_alpha
            or self.flip
        )

    @property
    def colour(self) -> bool:
        """Whether any colour jitter is on."""
        return bool(self.brightness or self.contrast or self.saturation)

    def __call__(self, x: Array, rng: np.random.Generator) -> Array:
        """A randomly changed copy of the batch ``x`` (same shape and dtype).

        With every strength 0, or an empty batch, ``x`` itself is returned.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                "Augment: rng must be a numpy.random.Generator, got "
                f"{type(rng).__name__}"
            )
        x = np.asarray(x)
        if x.ndim not in (3, 4) or 0 in x.shape[1:]:
            raise ValueError(
                "Augment: expected images (N, H, W) or (N, C, H, W), got an array "
                f"of shape {x.shape}"
            )
        if not (
            np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
        ):
            raise TypeError(f"Augment: expected integer or float pixels, got {x.dtype}")
        if not (self.geometric or self.colour) or len(x) == 0:
            return x
        images = x[:, None] if x.ndim == 3 else x
        out = images.astype(np.float32)
        if self.geometric:
            out = self._warp(out, rng)
        if self.colour:
            out = jitter(
                out,
                rng,
                self.brightness,
                self.contrast,
                self.saturation,
                self.value_range,
            )
        else:
            out = np.clip(out, *self.value_range)
        return _as_dtype(out.reshape(x.shape), x.dtype)

    def _warp(self, x: Array, rng: np.random.Generator) -> Array:
        n, _, h, w = x.shape
        # one draw per transform, always in this order, whether used or not
        angle = np.deg2rad(rng.uniform(-self.rotate, self.rotate, n))
        scale = np.asarray(rng.uniform(1 - self.scale, 1 + self.scale, n))
        shift_y = rng.uniform(-self.translate, self.translate, n) * h
        shift_x = rng.uniform(-self.translate, self.translate, n) * w
        flip = np.asarray(rng.random(n) < self.flip)
        sy, sx = affine_grid(h, w, angle, scale, shift_y, shift_x, flip)
        if self.elastic_alpha:
            dy, dx = elastic_field(n, h, w, self.elastic_alpha, self.elastic_sigma, rng)
            sy, sx = sy + dy, sx + dx
        return resample(x, sy, sx, self.mode, self.fill)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-ready)."""
        config = asdict(self)
        config["value_range"] = list(self.value_range)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Augment:
        """The ``Augment`` that :meth:`get_config` described."""
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"Augment: unknown settings {', '.join(sorted(unknown))}")
        values = dict(config)
        if "value_range" in values:
            values["value_range"] = tuple(values["value_range"])
        return cls(**values)

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"Augment({', '.join(changed)})"


def _as_dtype(x: Array, dtype: np.dtype[Any]) -> Array:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


#: named augmentations: what ``--augment NAME`` picks
AUGMENTATIONS: dict[str, Augment] = {
    "none": Augment(),
    # digits: small shifts, turns and zooms keep the class; no flips (2 vs 5)
    "digits": Augment(translate=0.1, rotate=10.0, scale=0.1),
    # Simard et al. (2003): elastic distortion plus a small affine warp
    "elastic": Augment(
        translate=0.05, rotate=7.5, scale=0.075, elastic_alpha=34.0, elastic_sigma=4.0
    ),
    # clothes are centred and upright; no mirror: the shoes all point one way
    # (99.7% of sneakers are closer to their class mean than to its mirror)
    "fashion": Augment(translate=0.08),
    # photographs: mirror, shift, turn, zoom and colour, edges extended
    "natural": Augment(
        translate=0.1,
        rotate=10.0,
        scale=0.1,
        flip=0.5,
        brightness=0.2,
        contrast=0.2,
        saturation=0.2,
        mode="edge",
    ),
}

#: the augmentation ``--augment`` without a name picks for each dataset
DEFAULT_AUGMENTATION = {
    "mnist": "digits",
    "fashion-mnist": "fashion",
    "folder": "natural",
}


def get_augmentation(name: str) -> Augment:
    """The named augmentation; ``ValueError`` listing the names otherwise."""
    if name not in AUGMENTATIONS:
        raise ValueError(
            f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}"
        )
    return AUGMENTATIONS[name]


__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_AUGMENTATION",
    "MODES",
    "Augment",
    "get_augmentation",
]
