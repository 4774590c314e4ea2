"""Charts read back from Chart.js itself (which dataset is on which axis, what the axes
cover) and the navigation at 1366x768, in Debian's Chromium."""
from __future__ import annotations

import re

import pytest

from .money_ui_support import CUSTOMER, laptop_page, money_world, screenshot, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

READ_CHART = """(canvas) => {
  const chart = Chart.getChart(canvas);
  const scales = {};
  for (const [id, s] of Object.entries(chart.scales)) {
    scales[id] = {axis: s.axis, min: s.min, max: s.max, title: s.options.title && s.options.title.text,
                  position: s.position, type: s.type};
  }
  const datasets = chart.data.datasets.map((d, i) => {
    const meta = chart.getDatasetMeta(i);
    return {label: d.label, data: d.data, x: meta.xAxisID, y: meta.yAxisID, visible: chart.isDatasetVisible(i)};
  });
  return {scales, datasets};
}"""


def read_chart(page) -> dict:
    canvas = page.locator("canvas[data-chart]").first
    canvas.wait_for()
    page.wait_for_function("() => typeof Chart !== 'undefined' && Chart.getChart(document.querySelector('canvas[data-chart]'))")
    return canvas.evaluate(READ_CHART)


def dataset(chart: dict, label_start: str) -> dict:
    [found] = [d for d in chart["datasets"] if d["label"].startswith(label_start)]
    return found


def assert_axis_covers(scale: dict, values) -> None:
    values = [float(v) for v in values]
    assert scale["min"] <= min(values) and scale["max"] >= max(values), (scale, min(values), max(values))
    # and it is the data's own scale, not a far larger one that flattens it
    assert scale["max"] <= max(values) * 1.5 + 1e-9, (scale, max(values))


def test_dashboard_chart_draws_money_on_a_money_axis(money_world, laptop_page):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(w.base + "/admin/dashboard")
    chart = read_chart(page)
    revenue, cost, calls = dataset(chart, "Revenue"), dataset(chart, "Cost"), dataset(chart, "Calls")
    assert revenue["label"] == "Revenue (EUR)" and cost["label"] == "Cost (EUR)"
    assert revenue["y"] == cost["y"] == "money" and calls["y"] == "count"
    money, count = chart["scales"]["money"], chart["scales"]["count"]
    assert money["title"] == "EUR" and count["title"] == "calls"
    assert money["position"] == "left" and count["position"] == "right"
    # the last 14 days of the world: 1.4 .. 4.4 EUR and 40 .. 90 calls a day
    assert [float(v) for v in revenue["data"]] == pytest.approx(
        [float(w.daily[d][1]) for d in sorted(w.daily)], abs=1e-6)
    assert calls["data"] == [w.daily[d][0] for d in sorted(w.daily)]
    assert_axis_covers(money, revenue["data"] + cost["data"])
    assert_axis_covers(count, calls["data"])
    assert max(float(v) for v in revenue["data"]) > 4 and money["max"] < 10   # not 0..90 like the calls
    assert page.problems == []
    screenshot(page, "dashboard")


@pytest.mark.parametrize("dimension", ["day", "customer"])
def test_report_charts_give_money_its_axis(money_world, laptop_page, dimension):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(w.base + f"/admin/reports?dimension={dimension}")
    chart = read_chart(page)
    revenue = dataset(chart, "Revenue")
    money = chart["scales"]["money"]
    assert money["title"] == "EUR"
    if dimension == "day":
        calls = dataset(chart, "Calls")
        assert revenue["y"] == "money" and calls["y"] == "count"
        assert_axis_covers(chart["scales"]["count"], calls["data"])
    else:   # horizontal bars: money runs along x
        margin = dataset(chart, "Margin")
        assert revenue["x"] == margin["x"] == "money" and money["axis"] == "x"
        assert chart["scales"]["y"]["type"] == "category"
    assert_axis_covers(money, [v for d in chart["datasets"] if d["label"] != "Calls" for v in d["data"]])
    # dates are typed and shown as ISO text, not in the browser's locale (11/07/2026)
    assert page.get_attribute("input[name=date_from]", "type") == "text"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", page.input_value("input[name=date_from]"))
    assert page.problems == []
    screenshot(page, f"reports-{dimension}")


def _nav_rows(page) -> list[float]:
    """The distinct vertical positions of the top-level menu entries."""
    return page.eval_on_selector_all("[data-main-nav] > li", "items => items.map(i => i.getBoundingClientRect().top)")


@pytest.mark.parametrize("who", ["admin", "customer"])
def test_navbar_is_one_line_at_1366(money_world, laptop_page, who):
    page, w = laptop_page, money_world
    sign_in(page, w.base, *([CUSTOMER] if who == "customer" else []))
    page.goto(w.base + ("/admin/dashboard" if who == "admin" else "/my/"))
    assert page.viewport_size == {"width": 1366, "height": 768}
    tops = _nav_rows(page)
    assert len(tops) >= 6 and len(set(tops)) == 1, tops
    navbar = page.locator("nav.navbar").bounding_box()
    assert navbar["height"] < 70, navbar
    # the brand, the menu, the time zone and sign-out share that one line
    for selector in (".navbar-brand", "[data-timezone]", "form button[type=submit]"):
        box = page.locator(f"nav.navbar {selector}").first.bounding_box()
        assert box["y"] + box["height"] <= navbar["y"] + navbar["height"], selector
    assert page.locator("[data-timezone]").inner_text().strip() == "UTC"


def test_menu_reaches_the_global_lists(money_world, laptop_page):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(w.base + "/admin/dashboard")
    for group, item, heading in [("Customers", "Endpoints", "Endpoints"), ("Customers", "Portal users", "Portal users"),
                                 ("Carriers", "Routing rules", "Routing rules"), ("Billing", "Mail outbox", "Mail outbox"),
                                 ("Ops", "Audit log", "Audit")]:
        page.click(f"[data-nav-group='{group}'] > a")
        page.click(f"[data-nav-group='{group}'] .dropdown-menu >> text={item}")
        page.wait_for_load_state()
        assert heading in page.locator("h1").first.inner_text()
        # the group of the page is marked active, on one line still
        assert "active" in page.get_attribute(f"[data-nav-group='{group}'] > a", "class")
        assert len(set(_nav_rows(page))) == 1
    assert page.problems == []
