"""The page in a real browser: headless Chromium, driven by Playwright.

One test draws a 7 with the mouse, waits for the prediction, checks the bars
and the 28×28 preview, and clears; another draws a 1 by touch at phone width.

Chromium comes from the system (Debian's ``chromium`` package, which
``.ci/run`` installs), never from a Playwright download. Without it or
Playwright the tests are skipped, except with ``CI`` set, where they fail.
``CHAINRULE_SCREENSHOT=docs/images/serve.png`` also saves the page after the
drawing there: the README's screenshot is made this way.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# CI installs both (.ci/run), so there a missing one fails instead of skipping
if not CHROMIUM.exists():
    reason = f"no Chromium at {CHROMIUM}: apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)
if os.environ.get("CI"):
    import playwright.sync_api as sync_api
else:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs Playwright: pip install -e '.[test]'"
    )

#: the strokes of a 7, in fractions of the canvas: the bar, then the stem
SEVEN = [[(0.22, 0.22), (0.78, 0.22)], [(0.78, 0.22), (0.42, 0.85)]]
#: a 1: one stroke down the middle
ONE = [[(0.52, 0.15), (0.48, 0.85)]]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def problems() -> list[str]:
    """Console errors and uncaught exceptions of the page (a CSP refusal is one)."""
    return []


def open_page(browser: Any, url: str, problems: list[str], **options: Any) -> Any:
    page = browser.new_page(**options)
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']")
    return page


def draw_with_mouse(page: Any, strokes: list[list[tuple[float, float]]]) -> None:
    box = page.locator("#canvas").bounding_box()
    for stroke in strokes:
        points = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            for fx, fy in stroke
        ]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=12)
        page.mouse.up()


def draw_with_touch(page: Any, strokes: list[list[tuple[float, float]]]) -> None:
    box = page.locator("#canvas").bounding_box()
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        (x0, y0), (x1, y1) = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            for fx, fy in stroke
        ]
        cdp.send(
            "Input.dispatchTouchEvent",
            {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]},
        )
        for i in range(1, 13):
            x, y = x0 + (x1 - x0) * i / 12, y0 + (y1 - y0) * i / 12
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]},
            )
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def wait_for_prediction(page: Any) -> None:
    # a function, not an expression: the page's CSP forbids eval
    page.wait_for_function(
        "() => document.body.dataset.busy === 'false' && "
        "document.getElementById('prediction').dataset.state === 'predicted'"
    )


def bar_widths(page: Any) -> list[float]:
    return page.eval_on_selector_all(
        "#bars .fill", "fills => fills.map(f => parseFloat(f.style.width) || 0)"
    )


def seen_ink(page: Any) -> int:
    """Sum of the red channel of the 28×28 preview (0 when black)."""
    return page.evaluate(
        """() => {
          const c = document.getElementById('seen');
          const data = c.getContext('2d').getImageData(0, 0, 28, 28).data;
          let sum = 0;
          for (let i = 0; i < data.length; i += 4) sum += data[i];
          return sum;
        }"""
    )


def test_draw_a_seven_see_the_prediction_then_clear(
    browser: Any, server_url: str, problems: list[str], tmp_path: Path
) -> None:
    page = open_page(
        browser,
        server_url,
        problems,
        viewport={"width": 1080, "height": 560},
        reduced_motion="reduce",  # bars jump to their width: the screenshot is final
    )
    assert "lenet5" in page.inner_text("#model-info")
    assert "% on the MNIST test set" in page.inner_text("#model-info")
    assert len(bar_widths(page)) == 10 and sum(bar_widths(page)) == 0

    draw_with_mouse(page, SEVEN)
    wait_for_prediction(page)

    assert page.inner_text("#prediction") == "7"
    widths = bar_widths(page)
    assert sum(widths) == pytest.approx(100, abs=0.6)  # each rounded to 0.1%
    top = page.eval_on_selector_all(
        "#bars .bar.top", "bars => bars.map(b => b.dataset.index)"
    )
    assert top == ["7"]
    assert max(widths) == widths[7] > 50
    assert seen_ink(page) > 0
    assert page.is_visible("#activations")
    assert "6 feature maps of 28×28" in page.inner_text("#activations-caption")
    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    target = os.environ.get("CHAINRULE_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)

    page.click("#clear")
    assert page.inner_text("#prediction") == "–"
    assert page.get_attribute("#prediction", "data-state") == "empty"
    assert sum(bar_widths(page)) == 0
    assert page.eval_on_selector_all("#bars .bar.top", "bars => bars.length") == 0
    assert seen_ink(page) == 0
    assert not page.is_visible("#activations")
    white = page.evaluate(
        """() => {
          const c = document.getElementById('canvas');
          const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          return data.every(v => v === 255);
        }"""
    )
    assert white
    assert problems == []


def test_draw_a_one_with_a_finger_at_phone_width(
    browser: Any, server_url: str, problems: list[str]
) -> None:
    page = open_page(
        browser,
        server_url,
        problems,
        viewport={"width": 375, "height": 740},
        has_touch=True,
        is_mobile=True,
    )
    # nothing wider than the phone's screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    draw_with_touch(page, ONE)
    wait_for_prediction(page)
    assert page.inner_text("#prediction") == "1"
    assert sum(bar_widths(page)) == pytest.approx(100, abs=0.6)
    assert seen_ink(page) > 0
    assert problems == []
