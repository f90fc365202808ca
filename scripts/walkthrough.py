"""Make the pictures and numbers of ``docs/walkthrough.md``.

From the tutorial's network to chainrule's: the tutorial net (N(0, 1) weights)
at initialisation and after training, the same net with Glorot weights, and the
first-layer filters of a trained CNN. Every picture in the walk-through comes
from this script; the numbers it prints are the ones the text quotes.

    python scripts/walkthrough.py [--data-dir DIR] [--out docs/images] [--cnn-epochs 1]

About 2 minutes on 2 cores (most of it the CNN epoch).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from chainrule.data import load_mnist
from chainrule.diagnostics import check_health, trace
from chainrule.layers import Dense, Flatten, Rescaling, Sigmoid
from chainrule.losses import BinaryCrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD
from chainrule.plots import plot_first_layer, plot_histograms, plot_history
from chainrule.presets import get_preset, make_callbacks, make_model

VALIDATION = 5000 / 60000
PROBE = 256


def tutorial_net(init: str, seed: int) -> Sequential:
    """The tutorial's 784-64-64-10 sigmoid net, no biases, with ``init`` weights."""
    layers = [Rescaling(1 / 255), Flatten()]
    for _ in range(2):
        layers += [Dense(64, use_bias=False, init=init), Sigmoid()]
    layers.append(Dense(10, use_bias=False, init=init))
    model = Sequential(layers, input_shape=(28, 28), seed=seed)
    return model.compile(BinaryCrossEntropy(reduction="batchmean"), SGD(2.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--cnn-epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    (x, y), (xt, yt) = load_mnist(args.data_dir)
    xp, yp = x[:PROBE], y[:PROBE]
    recipe = get_preset("tutorial").recipe

    for init, name in (("normal", "tutorial"), ("glorot", "glorot")):
        model = tutorial_net(init, args.seed)
        report = check_health(model, xp, yp)
        print(f"\n== {name} ({init} weights) at initialisation")
        print(report.format())
        plot_histograms(model, xp, yp, out / f"{name}_histograms_init.png")
        start = time.perf_counter()
        history = model.fit(
            x,
            y,
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            validation_split=VALIDATION,
            seed=args.seed,
            verbose=0,
        )
        seconds = time.perf_counter() - start
        test = model.evaluate(xt, yt)["accuracy"]
        print(
            f"{name}: {recipe.epochs} epochs in {seconds:.1f} s, validation "
            f"{100 * history['val_accuracy'][-1]:.2f}%, test {100 * test:.2f}%"
        )
        print(check_health(model, xp, yp).format())
        plot_history(history, out / f"{name}_curves.png", title=f"{name} net")
        plot_histograms(model, xp, yp, out / f"{name}_histograms_trained.png")
        plot_first_layer(model, out / f"{name}_first_layer.png")

    print("\n== backprop trace of the tutorial preset, 4 test images")
    tutorial = make_model("tutorial", seed=args.seed)
    print(trace(tutorial, xt[:4], yt[:4]).format())

    cnn_recipe = get_preset("cnn").recipe.replace(epochs=args.cnn_epochs)
    cnn = make_model("cnn", seed=args.seed, recipe=cnn_recipe)
    steps = math.ceil(len(x) * (1 - VALIDATION) / cnn_recipe.batch_size)
    start = time.perf_counter()
    cnn.fit(
        x,
        y,
        epochs=cnn_recipe.epochs,
        batch_size=cnn_recipe.batch_size,
        validation_split=VALIDATION,
        seed=args.seed,
        verbose=0,
        callbacks=make_callbacks(cnn_recipe, steps),
    )
    seconds = time.perf_counter() - start
    test = cnn.evaluate(xt, yt)["accuracy"]
    print(
        f"\ncnn: {cnn_recipe.epochs} epoch(s) in {seconds:.1f} s, "
        f"test {100 * test:.2f}%"
    )
    plot_first_layer(cnn, out / "cnn_filters.png")
    print(f"pictures written to {out}/")


if __name__ == "__main__":
    main()
