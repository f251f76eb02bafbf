"""Build the corpus of broken workspaces (run from anywhere; rewrites this folder's cases).

Each case is a small workspace (``<case>/raw/...``) that breaks one rule, plus
``<case>/expect.json``: the error code, file, column and rows the validation step must
name. The base workspace is valid: ``valid_base`` is kept as a control that must pass.

    python tests/corpus/build_corpus.py
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
WEEKS = 30
START = "2024-01-01"  # a Monday


def week(i: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(START) + dt.timedelta(days=7 * i)).isoformat()


def spend_rows(channels: list[str], offset: int = 0) -> list[list[str]]:
    rows = []
    for i in range(WEEKS):
        for k, channel in enumerate(channels):
            spend = 1000 + 137 * ((i * (k + 3) + offset) % 11) + 50 * k
            rows.append([week(i), channel, f"{spend:.2f}", str(spend * 90), str(spend // 7)])
    return rows


def base_files() -> dict[str, list[list[str]]]:
    header = ["date", "channel", "spend", "impressions", "clicks"]
    conversions = [["date", "conversions", "revenue"]] + [
        [week(i), f"{500 + 13 * (i % 7) + i:.2f}", f"{(500 + 13 * (i % 7) + i) * 60:.2f}"]
        for i in range(WEEKS)
    ]
    return {
        "raw/campaign_spend_google.csv": [list(header), *spend_rows(["search", "social"])],
        "raw/campaign_spend_tv.csv": [list(header), *spend_rows(["tv"], offset=5)],
        "raw/conversions.csv": conversions,
    }


def write_case(name: str, files: dict[str, list[list[str]] | bytes | None], expect: dict) -> None:
    folder = HERE / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "raw").mkdir(parents=True)
    for rel, content in files.items():
        if content is None:
            continue
        path = folder / rel
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text("".join(",".join(row) + "\n" for row in content), encoding="utf-8")
    (folder / "expect.json").write_text(json.dumps(expect, indent=2) + "\n")


def case(name: str, expect: dict, edit: Callable[[dict], None]) -> None:
    files = base_files()
    edit(files)
    write_case(name, files, expect)


def set_cell(files: dict, rel: str, line: int, column: str, value: str) -> None:
    """Set ``column`` on file line ``line`` (header = line 1)."""
    rows = files[rel]
    rows[line - 1][rows[0].index(column)] = value


def main() -> None:
    google, tv, conv = (
        "raw/campaign_spend_google.csv",
        "raw/campaign_spend_tv.csv",
        "raw/conversions.csv",
    )
    case("valid_base", {"valid": True}, lambda f: None)
    case(
        "missing_spend_file",
        {"code": "missing_input", "file": "raw/campaign_spend_{platform}.csv"},
        lambda f: (f.pop(google), f.pop(tv)),
    )
    case(
        "missing_conversions",
        {"code": "missing_input", "file": "raw/conversions.csv"},
        lambda f: f.pop(conv),
    )
    case("empty_file", {"code": "empty_file", "file": conv}, lambda f: f.__setitem__(conv, b""))
    case(
        "header_only",
        {"code": "empty_file", "file": tv, "message_contains": "no data rows"},
        lambda f: f.__setitem__(tv, f[tv][:1]),
    )
    case(
        "missing_column",
        {
            "code": "missing_column",
            "file": tv,
            "column": "impressions",
            "message_contains": "'impresions' looks like 'impressions'",
        },
        lambda f: f[tv][0].__setitem__(3, "impresions"),
    )
    case(
        "duplicate_column",
        {"code": "duplicate_column", "file": conv, "rows": [1], "message_contains": "conversions"},
        lambda f: [row.append(row[1]) for row in f[conv]],
    )
    case(
        "unparseable_date",
        {
            "code": "bad_date",
            "file": google,
            "column": "date",
            "rows": [7],
            "message_contains": "13/45/2024",
        },
        lambda f: set_cell(f, google, 7, "date", "13/45/2024"),
    )
    case(
        "duplicate_dates",
        {"code": "duplicate_rows", "file": conv, "column": "date", "rows": [5, 6]},
        lambda f: set_cell(f, conv, 6, "date", week(3)),
    )
    case(
        "negative_spend",
        {"code": "negative_value", "file": google, "column": "spend", "rows": [9]},
        lambda f: set_cell(f, google, 9, "spend", "-50.00"),
    )
    case(
        "negative_impressions",
        {"code": "negative_value", "file": tv, "column": "impressions", "rows": [4]},
        lambda f: set_cell(f, tv, 4, "impressions", "-1"),
    )
    case(
        "nan_value",
        {"code": "non_finite", "file": google, "column": "spend", "rows": [12]},
        lambda f: set_cell(f, google, 12, "spend", "NaN"),
    )
    case(
        "inf_value",
        {"code": "non_finite", "file": conv, "column": "conversions", "rows": [3]},
        lambda f: set_cell(f, conv, 3, "conversions", "inf"),
    )
    case(
        "empty_cell",
        {"code": "missing_value", "file": tv, "column": "spend", "rows": [8]},
        lambda f: set_cell(f, tv, 8, "spend", ""),
    )
    case(
        "not_a_number",
        {
            "code": "not_a_number",
            "file": google,
            "column": "spend",
            "rows": [5],
            "message_contains": "thousands separators",
        },
        lambda f: set_cell(f, google, 5, "spend", '"1,234.50"'),
    )

    def latin1(f: dict) -> None:
        rows = f[tv]
        text = "".join(",".join(r) + "\n" for r in rows).replace(
            f"{week(2)},tv", f"{week(2)},tv_caf\u00e9", 1
        )
        f[tv] = text.encode("latin-1")

    case("non_utf8", {"code": "encoding", "file": tv, "rows": [4]}, latin1)

    def mixed(f: dict) -> None:
        import datetime as dt

        rows = f[tv]
        for line in range(12, len(rows)):  # weekly for 10 rows, then daily
            day = dt.date.fromisoformat(week(10)) + dt.timedelta(days=line - 11)
            rows[line][0] = day.isoformat()

    case("mixed_grains", {"code": "mixed_grain", "file": tv, "column": "date"}, mixed)

    def sundays(f: dict) -> None:
        import datetime as dt

        for row in f[tv][1:]:
            row[0] = (dt.date.fromisoformat(row[0]) - dt.timedelta(days=1)).isoformat()

    case(
        "misaligned_weekdays",
        {"code": "misaligned_dates", "message_contains": "different weekdays"},
        sundays,
    )
    case(
        "misaligned_ranges",
        {"code": "misaligned_dates", "file": tv, "column": "date", "message_contains": "--start"},
        lambda f: f.__setitem__(tv, f[tv][:1] + f[tv][12:]),
    )
    case(
        "one_row",
        {"code": "too_few_periods", "file": conv, "rows": [2]},
        lambda f: f.__setitem__(conv, f[conv][:2]),
    )

    def zero_channel(f: dict) -> None:
        header = f[tv][0]
        f[tv] += [[week(i), "radio", "0", "0", "0"] for i in range(WEEKS)]
        assert header

    case(
        "channel_all_zeros",
        {
            "code": "channel_never_spends",
            "file": tv,
            "column": "spend",
            "message_contains": "'radio'",
        },
        zero_channel,
    )
    case(
        "channel_name_quotes",
        {"code": "bad_name", "file": google, "column": "channel", "rows": [3]},
        lambda f: set_cell(f, google, 3, "channel", '"search ""brand"""'),
    )
    case(
        "channel_name_html",
        {"code": "bad_name", "file": google, "column": "channel", "rows": [2]},
        lambda f: set_cell(f, google, 2, "channel", "<script>alert(1)</script>"),
    )
    case(
        "channel_name_path",
        {"code": "bad_name", "file": tv, "column": "channel", "rows": [6]},
        lambda f: set_cell(f, tv, 6, "channel", "../../etc/passwd"),
    )
    case(
        "malformed_csv",
        {"code": "malformed_csv", "file": conv, "rows": [9]},
        lambda f: f[conv][8].append("extra"),
    )

    def gap(f: dict) -> None:
        f[tv] = f[tv][:11] + f[tv][19:]

    case("long_gap", {"code": "long_gap", "file": tv, "message_contains": "8 weeks"}, gap)
    case(
        "bad_platform_name",
        {"code": "bad_name", "file": "raw/campaign_spend_my tv.csv"},
        lambda f: f.__setitem__("raw/campaign_spend_my tv.csv", f.pop(tv)),
    )
    case(
        "no_outcome_column",
        {"code": "missing_column", "file": conv, "column": "conversions"},
        lambda f: f.__setitem__(conv, [[r[0]] for r in f[conv]]),
    )


if __name__ == "__main__":
    main()
