"""Regenerate the README screenshots (docs/screenshots/*.png) from a running dashboard.

    python scripts/screenshots.py --runs-dir RUNS --data-home DATA [--out docs/screenshots]

Starts `streamlit run app.py` headless on localhost with that runs dir and data home, opens each
page in Debian Chromium (Playwright), fills the Playground with a sample text, and saves one
screenshot per page: the top of the page at 1280 px wide, reduced to a 256-colour palette so each
file stays under 200 KB (checked). Use real runs (e.g. benchmarks/bench_app.py's runs dir) for
pictures worth showing.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_BYTES = 200_000
SAMPLE = ("NASA delayed the space shuttle launch again; the orbiter will carry a satellite to a higher orbit "
          "and the crew will test new telescope hardware before the mission returns.")
# file name -> (URL path, page heading, height of the shot in px)
SHOTS = {"home": ("", "newsclf — 20 Newsgroups classifiers", 900), "dataset": ("Dataset", "Dataset", 1000),
         "train": ("Train", "Train", 1000), "results": ("Results", "Results", 1400),
         "playground": ("Playground", "Playground", 1300), "errors": ("Errors", "Errors", 1300)}


def compress(png: bytes, colours: int = 256) -> bytes:
    """The PNG reduced to a palette of `colours` (adaptive), optimised; smaller palettes until it fits."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    while True:
        buf = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        if buf.tell() <= MAX_BYTES or colours <= 16:
            return buf.getvalue()
        colours //= 2


def take(url: str, out: Path) -> dict[str, int]:
    from playwright.sync_api import sync_playwright

    from tests.helpers.app import CHROMIUM, CHROMIUM_ARGS

    sizes = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, (path, heading, height) in SHOTS.items():
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.goto(f"{url}/{path}")
            page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)
            page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached", timeout=120_000)
            if name == "playground":
                area = page.get_by_label("Text to classify")
                area.fill(SAMPLE)
                area.press("Control+Enter")
                page.locator('[data-testid="stMetric"]', has_text="Predicted class").first.wait_for(timeout=120_000)
                page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached", timeout=120_000)
            page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=120_000)
            page.wait_for_timeout(1500)  # charts finish drawing
            data = compress(page.screenshot(full_page=False))
            (out / f"{name}.png").write_bytes(data)
            sizes[name] = len(data)
            page.close()
        browser.close()
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", required=True, type=Path)
    parser.add_argument("--data-home", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    from tests.helpers.app import start_server, stop_server

    args.out.mkdir(parents=True, exist_ok=True)
    env = {"NEWSCLF_RUNS_DIR": str(args.runs_dir.resolve()), "NEWSCLF_DATA_HOME": str(args.data_home.resolve()),
           "NEWSCLF_GPUS": "none"}
    proc, url = start_server(env, args.out / ".streamlit.log")
    try:
        sizes = take(url, args.out)
    finally:
        stop_server(proc)
        (args.out / ".streamlit.log").unlink(missing_ok=True)
    for name, size in sizes.items():
        print(f"{args.out / (name + '.png')}: {size / 1000:.0f} KB")
    too_big = [n for n, s in sizes.items() if s > MAX_BYTES]
    if too_big:
        print(f"error: over {MAX_BYTES // 1000} KB: {', '.join(too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
