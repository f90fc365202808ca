"""Make the pictures of ``docs/images.md``: a photo of a digit prepared as MNIST was.

Four "photos" are made from MNIST test digits the way people make them (blue
ballpoint on paper under uneven light, a web-canvas drawing with a transparent
background, chalk on a board, a small pencil digit in a corner) and written as
sample files. Then:

- ``preprocessing_steps.png``: one photo through every step of ``to_mnist``;
- ``preprocessing_before_after.png``: each photo, the photo merely shrunk to
  28×28, the prepared digit and the MNIST original, with what a small CNN
  (trained here for one epoch, or ``--model FILE``) predicts for each.

    python scripts/preprocessing_pictures.py [--data-dir DIR] [--out docs/images]

About 20 seconds on 2 cores (most of it the training epoch). Needs Pillow and
matplotlib: ``pip install -e '.[image,plot]'``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

import chainrule as cr
from chainrule.imaging import (
    centre_by_mass,
    crop_to_ink,
    fit_to_box,
    ink_on_black,
    load_image,
    resize,
    to_mnist,
)

#: which MNIST test digit each sample shows, and how it is drawn
SAMPLES = {
    "ballpoint": 0,
    "canvas": 1,
    "chalk": 2,
    "pencil": 3,
}


def sheet_of(digit: np.ndarray, size: tuple[int, int], at: tuple[int, int], scale: int):
    """Ink amount in [0, 1] on a ``size`` (width, height) sheet: the digit, enlarged."""
    big = Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.BICUBIC)
    sheet = Image.new("L", size, 0)
    sheet.paste(big, at)
    return np.asarray(sheet, dtype=np.float64)[..., None] / 255  # (H, W, 1)


def coloured(amount, ink, paper, light: float, grain: float, rng) -> np.ndarray:
    """RGB uint8: ``ink`` on ``paper``, darker towards the right, with grain."""
    height, width, _ = amount.shape
    shade = 1 - light * np.linspace(0, 1, width)[None, :, None]  # (1, W, 1)
    base = np.asarray(paper, dtype=np.float64) * shade
    noise = grain * rng.standard_normal((height, width, 1))
    rgb = base * (1 - amount) + np.asarray(ink, dtype=np.float64) * amount + noise
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def make_samples(digits: np.ndarray, rng: np.random.Generator) -> dict[str, bytes]:
    """The four sample files, as bytes."""
    files = {}
    amount = sheet_of(digits[SAMPLES["ballpoint"]], (320, 240), (150, 30), 6)
    rgb = coloured(amount, (25, 45, 130), (238, 232, 215), 0.06, 3, rng)
    files["ballpoint.jpg"] = encode(Image.fromarray(rgb), "JPEG")
    amount = sheet_of(digits[SAMPLES["canvas"]], (280, 280), (28, 28), 8)
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., 3] = np.rint(255 * amount[..., 0])  # black strokes, transparent paper
    files["canvas.png"] = encode(Image.fromarray(rgba, "RGBA"), "PNG")
    amount = sheet_of(digits[SAMPLES["chalk"]], (300, 220), (60, 40), 5)
    rgb = coloured(amount, (230, 232, 225), (55, 72, 64), 0.0, 5, rng)
    files["chalk.png"] = encode(Image.fromarray(rgb), "PNG")
    amount = sheet_of(digits[SAMPLES["pencil"]], (240, 180), (170, 100), 2)
    rgb = coloured(amount, (95, 95, 100), (205, 203, 198), 0.03, 2, rng)
    files["pencil.png"] = encode(Image.fromarray(rgb), "PNG")
    return files


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def shown(data: bytes) -> np.ndarray:
    """How a file looks on a white page (transparency composited on white)."""
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    page = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(page, image).convert("RGB"))


def small_cnn(x: np.ndarray, y: np.ndarray) -> cr.Sequential:
    """The tests' small CNN, one epoch on all 60,000 digits (about 98%)."""
    # one definition, in the image tests' helpers (tests/photos.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from photos import small_cnn as untrained

    model = untrained()
    model.fit(x, y, epochs=1, batch_size=64, seed=0, verbose=0)
    return model


def guess(model: cr.Sequential, digit: np.ndarray) -> str:
    p = model.predict(digit[None])[0]
    return f"{int(p.argmax())} ({100 * p.max():.0f}%)"


def steps_figure(data: bytes, path: Path) -> None:
    grey = load_image(data)
    ink = ink_on_black(grey)
    cropped = crop_to_ink(ink)
    boxed = fit_to_box(cropped)
    centred = centre_by_mass(boxed)
    panels = [
        ("1. the photo", shown(data), None),
        ("2. grey", grey, "gray"),
        ("3. ink on black", ink, "gray"),
        ("4. cropped to the ink", cropped, "gray"),
        ("5. longer side 20 px", boxed, "gray"),
        ("6. centred by mass", centred, "gray"),
    ]
    fig = Figure(figsize=(15, 3.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(panels))
    for ax, (title, image, cmap) in zip(axes, panels, strict=True):
        ax.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{title}\nshape {image.shape[:2]}", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    rows = np.flatnonzero(centred.any(axis=1))
    cols = np.flatnonzero(centred.any(axis=0))
    last = axes[-1]
    last.add_patch(
        Rectangle(
            (cols[0] - 0.5, rows[0] - 0.5),
            cols[-1] - cols[0] + 1,
            rows[-1] - rows[0] + 1,
            fill=False,
            edgecolor="tab:orange",
            linestyle="--",
        )
    )
    weights = centred / centred.sum()
    r, c = np.indices(centred.shape)
    last.plot((c * weights).sum(), (r * weights).sum(), "+", color="tab:red", ms=12)
    last.plot(14, 14, "x", color="tab:cyan", ms=8)
    fig.savefig(path)


def before_after_figure(files, originals, model, path: Path) -> None:
    fig = Figure(figsize=(10, 2.6 * len(files)), dpi=100, layout="constrained")
    axes = fig.subplots(len(files), 4)
    for row, (name, data) in zip(axes, files.items(), strict=True):
        grey = load_image(data)
        naive = np.rint(255 * resize(grey, 28, 28)).astype(np.uint8)
        prepared = to_mnist(grey)
        original = originals[SAMPLES[name.split(".")[0]]]
        panels = [
            (f"{name}, {grey.shape[1]}×{grey.shape[0]} px", shown(data), None),
            (f"just shrunk: {guess(model, naive)}", naive, "gray"),
            (f"to_mnist: {guess(model, prepared)}", prepared, "gray"),
            (f"MNIST original: {guess(model, original)}", original, "gray"),
        ]
        for ax, (title, image, cmap) in zip(row, panels, strict=True):
            top = 1 if image.dtype != np.uint8 else 255
            ax.imshow(image, cmap=cmap, vmin=0, vmax=top, interpolation="nearest")
            ax.set_title(title, fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--model", help="a model file to predict with (default: train)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (x, y), (x_test, _) = cr.load_mnist(args.data_dir)
    model = cr.load_model(args.model) if args.model else small_cnn(x, y)
    files = make_samples(x_test, np.random.default_rng(0))
    for name, data in files.items():
        (out / f"sample_{name}").write_bytes(data)
    steps_figure(files["ballpoint.jpg"], out / "preprocessing_steps.png")
    before_after_figure(files, x_test, model, out / "preprocessing_before_after.png")
    for name, data in files.items():
        grey = load_image(data)
        naive = np.rint(255 * resize(grey, 28, 28)).astype(np.uint8)
        print(
            f"{name}: just shrunk {guess(model, naive)}, "
            f"to_mnist {guess(model, to_mnist(grey))}"
        )
    print(f"pictures and samples written to {out}/")


if __name__ == "__main__":
    main()
