"""A small trained model and a real server for it, shared by the serve tests.

The model is the ``lenet5`` preset trained for one epoch on the 60,000 MNIST
training images (batch 64, Adam at a constant 0.002): about 98.2% on the test
set, in under 20 s on one core. The server is uvicorn on a free loopback port,
in a thread, as ``chainrule serve`` runs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chainrule.io import save_model
from chainrule.presets import make_model

for _module in ("starlette", "uvicorn", "httpx", "PIL"):
    pytest.importorskip(
        _module, reason="needs the test extra: pip install -e '.[test]'"
    )

TRAIN_IMAGES = 60_000


@pytest.fixture(scope="session")
def served_model(mnist: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lenet5.npz``: one epoch of lenet5, saved as ``chainrule train`` saves."""
    (x, y), (x_test, y_test) = mnist
    model = make_model("lenet5", seed=0, lr=0.002)
    model.fit(
        x[:TRAIN_IMAGES], y[:TRAIN_IMAGES], epochs=1, batch_size=64, seed=0, verbose=0
    )
    scores = model.evaluate(x_test, y_test)
    path = tmp_path_factory.mktemp("serve") / "lenet5.npz"
    save_model(
        model,
        path,
        metadata={
            "preset": "lenet5",
            "dataset": "mnist",
            "class_names": [str(i) for i in range(10)],
            "metrics": {
                "test_accuracy": scores["accuracy"],
                "test_loss": scores["loss"],
            },
        },
    )
    return path


@pytest.fixture(scope="session")
def server_url(served_model: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT/`` of uvicorn serving :func:`served_model`."""
    from chainrule.serve import create_app, make_server, open_socket, url_of

    sock = open_socket("127.0.0.1", 0)
    server = make_server(create_app(served_model))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
