"""``chainrule serve`` as a user runs it: URL, warnings, one-line errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import chainrule_cli, cli_env

import chainrule.serve
from chainrule.cli.main import main
from chainrule.io import save_model
from chainrule.presets import make_model
from chainrule.serve import is_loopback, open_socket


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "lenet5.npz"
    save_model(make_model("lenet5", seed=0), path)
    return path


def test_serve_prints_the_url_serves_and_stops_on_ctrl_c(
    model_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", "serve", str(model_file), "--port", "0"],
        cwd=tmp_path,
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving {model_file} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        assert httpx.get(url + "health", timeout=10).json() == {"status": "ok"}
        assert httpx.get(url + "api/model", timeout=10).json()["preset"] is None
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "warning" not in err and "error" not in err
    assert out.endswith("stopped\n")


@pytest.mark.parametrize(
    ("content", "words"), [(None, "no such model file"), ("junk", "junk.npz")]
)
def test_a_missing_or_broken_model_is_one_line_before_starting(
    tmp_path: Path, content: str | None, words: str
) -> None:
    path = tmp_path / ("junk.npz" if content else "missing.npz")
    if content:
        path.write_text(content)
    result = chainrule_cli("serve", path, "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule serve: error: ")
    assert words in lines[0]


def test_without_the_serve_extra_it_says_how_to_install_it(
    tmp_path: Path, model_file: Path
) -> None:
    blocked = tmp_path / "blocked" / "starlette"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(
        "raise ImportError(\"No module named 'starlette'\")\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home)
    env["PYTHONPATH"] = str(tmp_path / "blocked")
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "serve", str(model_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'chainrule[serve]'" in lines[0]


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_a_usage_error(tmp_path: Path, port: str) -> None:
    result = chainrule_cli("serve", "model.npz", "--port", port, cwd=tmp_path)
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path, model_file: Path) -> None:
    with open_socket("127.0.0.1", 0) as taken:
        port = str(taken.getsockname()[1])
        result = chainrule_cli("serve", model_file, "--port", port, cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_host_other_machines_can_reach_prints_a_warning(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # listen on loopback whatever --host says: the test must not open a port
    # to the network; the server returns at once
    class Server:
        def run(self, sockets: list[Any]) -> None:
            self.sockets = sockets

    monkeypatch.setattr(
        chainrule.serve, "open_socket", lambda host, port: open_socket("127.0.0.1", 0)
    )
    monkeypatch.setattr(chainrule.serve, "make_server", lambda app: Server())
    assert main(["serve", str(model_file), "--host", "0.0.0.0"]) == 0
    out, err = capsys.readouterr()
    assert "warning: listening on 0.0.0.0" in err
    assert "reachable from other machines" in err
    assert out.startswith(f"serving {model_file} at http://127.0.0.1:")
