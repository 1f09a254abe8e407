"""Regenerate docs/console/*.png: every console page of the seeded demo portfolio, in Chinese,
as the admin sees it (Debian chromium through Playwright).

    PYTHONPATH=. .venv/bin/python tools/console_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.console.conftest import Console, launch_chromium, running_console, sign_in

PAGES = (
    ("board", "/board"),
    ("leases", "/leases?lease=3"),
    ("billing", "/billing"),
    ("rent-roll", "/billing/rent-roll"),
    ("meters", "/meters"),
    ("gateways", "/gateways"),
    ("doors", "/doors"),
    ("work-orders", "/work-orders?order=1"),
    ("parts", "/parts"),
    ("audit", "/audit"),
    ("users", "/users"),
    ("import", "/import"),
)


def shoot(page: Page, console: Console, out: Path) -> list[Path]:
    page.goto(f"{console.url}/")
    written = [out / "login.png"]
    page.screenshot(path=str(written[0]))
    sign_in(page, console, "demo-admin")
    page.wait_for_url(f"{console.url}/board")
    page.goto(f"{console.url}/billing")
    page.get_by_test_id("run-billing").click()  # so the billing page has invoices to show
    page.get_by_test_id("ar-total").filter(has_not_text="¥0.00").wait_for()
    stock_and_repairs(page, console)
    for name, path in PAGES:
        page.goto(f"{console.url}{path}")
        page.wait_for_load_state("networkidle")
        written.append(out / f"{name}.png")
        page.screenshot(path=str(written[-1]))
    return written


def stock_and_repairs(page: Page, console: Console) -> None:
    """A part in the first property's store and an order for one of its units, through the
    API as the signed-in admin, so those pages have rows to show."""
    api = f"{console.url}/api/v1"
    prop = page.request.get(f"{api}/properties").json()["items"][0]["id"]
    unit = page.request.get(f"{api}/units?property_id={prop}&limit=1").json()["items"][0]["id"]
    part = page.request.post(
        f"{api}/parts",
        data={"code": "TAP-01", "name": "厨房水龙头", "price_fen": 3550, "reorder_level": 2},
    )
    page.request.post(
        f"{api}/parts/{part.json()['id']}/receipts", data={"property_id": prop, "quantity": 6}
    )
    page.request.post(
        f"{api}/work-orders",
        data={"unit_id": unit, "category": "plumbing", "description": "厨房水龙头漏水"},
    )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/console")
    out.mkdir(parents=True, exist_ok=True)
    with running_console() as console, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 860}, locale="zh-CN")
            for path in shoot(context.new_page(), console, out):
                print(path)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
