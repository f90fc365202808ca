"""The ASGI app called directly: what no well-behaved HTTP client can send."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from chainrule import ModelFileError
from chainrule.io import save_model
from chainrule.presets import make_model
from chainrule.serve import MAX_BODY_BYTES, Predictor, create_app


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "tutorial.npz"
    save_model(make_model("tutorial", seed=0), path)
    return path


def call(
    app: Any,
    method: str,
    path: str,
    chunks: list[bytes] = (),  # type: ignore[assignment]
    headers: dict[str, str] | None = None,
    lost: bool = False,
) -> tuple[int, Any, int]:
    """Run one request through ``app``; status, JSON body, chunks it read.

    ``lost``: the client disconnects after its last chunk, mid-body.
    """
    messages = [
        {"type": "http.request", "body": c, "more_body": lost or i < len(chunks) - 1}
        for i, c in enumerate(chunks or [b""])
    ]
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(messages):
            read += 1
            return messages[read - 1]
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def run() -> None:
        await app(scope, receive, send)

    anyio.run(run)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], json.loads(body) if body else None, read


def test_a_client_that_declares_a_small_body_and_sends_more_gets_413(
    untrained: Path,
) -> None:
    app = create_app(untrained)
    chunks = [b"\0" * 65536] * 40  # 2.5 MB behind "Content-Length: 100"
    status, body, read = call(
        app, "POST", "/api/predict", chunks, {"content-length": "100"}
    )
    assert status == 413
    assert "limit" in body["error"]
    # reading stopped at the limit: 16 chunks are 1 MiB, the 17th passes it
    assert read == MAX_BODY_BYTES // 65536 + 1


def test_a_client_that_leaves_mid_body_is_not_an_error(
    untrained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(untrained)
    # more_body=True, then the messages run out: receive() says disconnected
    status, _, _ = call(
        app, "POST", "/api/predict", [b"\0" * 100, b"\0" * 100], lost=True
    )
    assert status == 400
    assert "failed" not in caplog.text


def test_the_limit_is_a_parameter(untrained: Path) -> None:
    app = create_app(untrained, max_body_bytes=1000)
    status, _, _ = call(app, "POST", "/api/predict", [b"\0" * 1001])
    assert status == 413
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(untrained, max_body_bytes=0)


def test_a_bug_is_a_500_with_a_json_error_and_the_app_goes_on(
    untrained: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(untrained)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Predictor, "classify_png", broken)
    with caplog.at_level(logging.ERROR, logger="chainrule.serve"):
        status, body, _ = call(app, "POST", "/api/predict", [b"png"])
    assert status == 500
    assert body == {"error": "internal error; the server logged it"}
    assert "a bug" in caplog.text
    assert call(app, "GET", "/health")[:2] == (200, {"status": "ok"})


def test_a_model_that_does_not_take_mnist_images_is_refused(tmp_path: Path) -> None:
    import chainrule as cr

    model = cr.Sequential([cr.Dense(10)], input_shape=(20,), seed=0)
    model.compile(cr.CrossEntropy())
    save_model(model, tmp_path / "small.npz")
    with pytest.raises(ValueError, match="28x28 images"):
        create_app(tmp_path / "small.npz")


def test_a_model_trained_on_a_folder_is_refused(tmp_path: Path) -> None:
    import chainrule as cr

    model = cr.Sequential([cr.Flatten(), cr.Dense(2)], input_shape=(1, 28, 28))
    model.compile(cr.CrossEntropy())
    info = {"kind": "folder", "image_size": [28, 28], "channels": 1}
    save_model(model, tmp_path / "pets.npz", metadata={"input": info})
    with pytest.raises(ValueError, match="trained on folder images"):
        create_app(tmp_path / "pets.npz")


def test_a_missing_or_broken_model_file_fails_before_serving(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        create_app(tmp_path / "missing.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        create_app(tmp_path / "broken.npz")
