"""The report's per-geo table: every (geo, channel) cell of a geo decomposition is shown with
its interval and ROAS, each number traced to the contributions file, and nothing of it on a
national fit."""

from __future__ import annotations

import html as html_text
import json
from typing import Any

from attribution_analysis.contracts.common import Interval
from attribution_analysis.report import fmt
from tests.report.edits import between, edit, faq_checked, report_with_records
from tests.report.faq_sources import report_number_problems

GEO_SHARES = {"north": 0.35, "south": 0.65}


def _split_over_geos(data: dict[str, Any]) -> None:
    """Cells whose sums over two geos are the national totals (the way decompose writes
    them); the south spends nothing on the last channel."""
    cells = []
    last = data["channels"][-1]["channel"]
    for geo, share in GEO_SHARES.items():
        for channel in data["channels"]:
            total = channel["total_contribution"]
            scaled = {
                "mean": total["mean"] * share,
                "median": total["median"] * share,
                "hdi_90": [total["hdi_90"][0] * share, total["hdi_90"][1] * share],
                "hdi_95": [total["hdi_95"][0] * share, total["hdi_95"][1] * share],
            }
            dark = geo == "south" and channel["channel"] == last
            cells.append(
                {
                    "geo": geo,
                    "channel": channel["channel"],
                    "total_contribution": scaled,
                    "share_of_geo_media": channel["share_of_media"],
                    "roas": None if dark else channel["roas"],
                    "spend": 0.0 if dark else channel["spend"] * share,
                }
            )
    data["geos"] = cells


def test_each_geo_row_shows_its_cells_traced_to_the_contributions(demo):
    national, _ = report_with_records(demo)
    assert 'id="geo-contributions-table"' not in national  # negative control: no geo column

    edit(demo, "mmm_channel_contributions.json", _split_over_geos)
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    table = between(html, 'id="geo-contributions-table"', "</table>")
    assert table.count("<tr data-geo=") == len(GEO_SHARES)
    written = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    channels = [c["channel"] for c in written["channels"]]
    north = between(table, '<tr data-geo="north">', "</tr>")
    for cell in written["geos"]:
        # The page escapes what it shows ("< 1" for an interval reaching 0 is "&lt; 1").
        row = html_text.unescape(between(table, f'<tr data-geo="{cell["geo"]}">', "</tr>"))
        assert fmt.interval(Interval.model_validate(cell["total_contribution"])) in row
        if cell["roas"]:
            assert fmt.interval(Interval.model_validate(cell["roas"])) in row
    south = between(table, '<tr data-geo="south">', "</tr>")
    assert south.count("no spend") == 1 and "no spend" not in north
    # Columns follow the national table's channels, each with contribution and ROAS.
    header = between(table, "<thead>", "</thead>")
    assert [h.split(":")[0] for h in header.split('<th class="n">')[1::2]] == channels


def test_the_cmo_faq_names_each_channels_best_and_worst_geo(demo):
    national = faq_checked(demo, "cmo")
    assert "Which regions pay back best?" not in national  # negative control

    edit(demo, "mmm_channel_contributions.json", _split_over_geos)
    written = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    # Give north a higher ROAS than south on every channel, so the order is known.
    for cell in written["geos"]:
        if cell["roas"] and cell["geo"] == "north":
            cell["roas"] = {
                k: ([v[0] * 2, v[1] * 2] if isinstance(v, list) else v * 2)
                for k, v in cell["roas"].items()
            }
    (demo / "analysis" / "mmm_channel_contributions.json").write_text(json.dumps(written))
    cmo = faq_checked(demo, "cmo")  # checks every number against its source
    section = between(cmo, "### Which regions pay back best?", "*Source:")
    last = written["channels"][-1]["channel"]
    for channel in written["channels"]:
        name = channel["channel"]
        line = next(x for x in section.splitlines() if x.startswith(f"- **{name}**"))
        if channel["channel"] == last:  # south spends nothing there: north is both
            assert "highest in north" in line and "lowest in north" in line
        else:
            assert "highest in north" in line and "lowest in south" in line
