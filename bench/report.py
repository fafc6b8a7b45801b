#!/usr/bin/env python3
"""Tables (markdown) and a ratio chart (hand-written SVG) from bench/out/results.json.

    python3 bench/report.py [bench/out/results.json]   # rewrites results.md and ratios.svg beside it
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

NAMES = {
    "origin": "fast origin alone",
    "nginx": "nginx proxy_pass → fast origin",
    "proxy": "s3-resign-proxy → fast origin",
    "s3sfs": "s3s-fs alone",
    "proxy_s3sfs": "s3-resign-proxy → s3s-fs",
    "proxy_b": "s3-resign-proxy B (BENCH_PROXY_B_BIN) → fast origin",
}
BASE = {"origin": "origin", "nginx": "origin", "proxy": "origin", "s3sfs": "s3sfs", "proxy_s3sfs": "s3sfs", "proxy_b": "origin"}


# ------------------------------------------------------------------ numbers

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def per_round(runs: dict, a: str, b: str, key: str, op) -> list:
    """op(run_a[key], run_b[key]) for each round both targets ran."""
    out = []
    for ra, rb in zip(runs.get(a, []), runs.get(b, [])):
        va, vb = ra.get(key), rb.get(key)
        if va is not None and vb is not None:
            out.append(op(va, vb))
    return out


def ratio(runs, a, b, key):
    return per_round(runs, a, b, key, lambda x, y: x / y if y else None)


def diff(runs, a, b, key):
    return per_round(runs, a, b, key, lambda x, y: x - y)


def fmt(x, digits=0, unit=""):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}{unit}"


def spread(xs, digits=0, unit=""):
    """median (min–max)"""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], digits, unit)
    return f"{fmt(med(xs), digits, unit)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def col(runs, t, key):
    return [r.get(key) for r in runs.get(t, [])]


# ------------------------------------------------------------------ markdown

def table_small(pt) -> list[str]:
    runs = pt["runs"]
    out = [
        f"**{pt['label']}**",
        "",
        "| target | req/s | × origin alone | p50 ms | p99 ms | p99 added over origin, ms | CPU µs/req (target process) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in runs:
        if not runs[t]:
            continue
        b = BASE[t]
        r_ratio = "1" if t == b else spread(ratio(runs, t, b, "rps"), 3)
        added = "–" if t == b else spread([d / 1000 for d in diff(runs, t, b, "p99_us")], 2)
        out.append(
            f"| {NAMES[t]} | {spread(col(runs, t, 'rps'))} | {r_ratio} | {fmt(med([x / 1000 for x in col(runs, t, 'p50_us')]), 2)} "
            f"| {spread([x / 1000 for x in col(runs, t, 'p99_us')], 2)} | {added} | {spread(col(runs, t, 'cpu_us_per_req'), 1)} "
            f"| {sum(col(runs, t, 'errors'))} |"
        )
    return out


def table_big(s, pt) -> list[str]:
    runs = pt["runs"]
    out = [
        f"**{pt['label']}**",
        "",
        "| target | MB/s | × origin alone | CPU s/GiB (target process) | peak RSS MiB (VmHWM) | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in runs:
        if not runs[t]:
            continue
        b = BASE[t]
        r_ratio = "1" if t == b else spread(ratio(runs, t, b, "mb_per_s"), 3)
        rss = [r.get("peak_rss_mib") for r in runs[t]]
        rss_s = "–" if all(x is None for x in rss) else f"{max(x for x in rss if x is not None):.1f} (max)"
        out.append(
            f"| {NAMES[t]} | {spread(col(runs, t, 'mb_per_s'))} | {r_ratio} | {spread(col(runs, t, 'cpu_s_per_gib'), 3)} "
            f"| {rss_s} | {sum(col(runs, t, 'errors'))} |"
        )
    return out


def point(results, sid, label):
    for s in results["scenarios"]:
        if s["id"] == sid:
            for pt in s["points"]:
                if pt["label"] == label:
                    return pt["runs"]
    return None


def checks(results) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each acceptance target the load benchmark covers."""
    out = []

    def add(name, vals, limit, ge=True, digits=3, unit="×"):
        m = med(vals) if vals else None
        if m is None:
            out.append((name, "not measured", None))
            return
        ok = m >= limit if ge else m <= limit
        out.append((name, f"{m:.{digits}f}{unit} (rounds: {', '.join(f'{v:.{digits}f}' for v in vals)})", ok))

    for c in (16, 64):
        r = point(results, "small_get", f"c={c}")
        if r:
            add(f"1 KiB GET req/s c={c} ≥ 1.0× nginx proxy_pass", ratio(r, "proxy", "nginx", "rps"), 1.0)
    r = point(results, "small_get", "c=16")
    if r:
        add("1 KiB GET p99 added over origin alone, c=16 ≤ 1 ms", [d / 1000 for d in diff(r, "proxy", "origin", "p99_us")], 1.0, ge=False, digits=2, unit=" ms")
        for c in (16, 64):
            rc = point(results, "small_get", f"c={c}")
            add(f"CPU per 1 KiB GET (c={c}) ≤ nginx's + 3 µs: proxy − nginx", diff(rc, "proxy", "nginx", "cpu_us_per_req"), 3.0, ge=False, digits=1, unit=" µs")
    for par in (1, 4):
        r = point(results, "big_get", f"{par} in parallel")
        if r:
            add(f"big GET MB/s, {par} stream(s) ≥ 1.0× nginx proxy_pass", ratio(r, "proxy", "nginx", "mb_per_s"), 1.0)
            add(f"big GET CPU/GiB, {par} stream(s) ≤ nginx's (proxy ÷ nginx)", ratio(r, "proxy", "nginx", "cpu_s_per_gib"), 1.0, ge=False)
    for par in (1, 4):
        r = point(results, "big_put", f"{par} in parallel")
        if r:
            add(f"big PUT MB/s (hex hash verified), {par} stream(s) ≥ 0.95× origin alone", ratio(r, "proxy", "origin", "mb_per_s"), 0.95)
    for c in (16, 64):
        r = point(results, "small_get", f"c={c}")
        if r:
            add(f"s3s-fs: 1 KiB GET req/s c={c} ≥ 0.95× s3s-fs alone", ratio(r, "proxy_s3sfs", "s3sfs", "rps"), 0.95)
    for sid, what in (("big_get", "GET"), ("big_put", "PUT")):
        for par in (1, 4):
            r = point(results, sid, f"{par} in parallel")
            if r:
                add(f"s3s-fs: big {what} MB/s, {par} stream(s) ≥ 0.95× s3s-fs alone", ratio(r, "proxy_s3sfs", "s3sfs", "mb_per_s"), 0.95)
    # An A/B of two proxy builds in the same run (BENCH_PROXY_B_BIN), when one was given.
    for c in (16, 64):
        r = point(results, "small_get", f"c={c}")
        if r and "proxy_b" in r:
            add(f"A/B: 1 KiB GET req/s c={c}, this build ÷ build B (≥ 0.98)", ratio(r, "proxy", "proxy_b", "rps"), 0.98)
    r = point(results, "many_put", "32 in parallel")
    if r:
        for t in ("proxy", "proxy_s3sfs"):
            add(f"peak RSS, 32 concurrent uploads ({NAMES[t]}) ≤ 64 MiB", col(r, t, "peak_rss_mib"), 64, ge=False, digits=1, unit=" MiB")
    return out


def markdown(results) -> str:
    m = results["meta"]
    runs = [r for s in results["scenarios"] for pt in s["points"] for rs in pt["runs"].values() for r in rs]
    foreign = [r.get("foreign_frac", 0) for r in runs]
    lines = [
        "# s3-resign-proxy load benchmark",
        "",
        f"- date: {m['date']}; {m['proxy_version']} at git {m['git']}",
        f"- machine: {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, nginx {m['nginx']}",
        f"- command: `{m['command'].strip()}`{' (smoke: figures are meaningless)' if m['smoke'] else ''}",
        f"- {m['rounds']} round(s), targets interleaved within each round; figures are median (min–max) over rounds; "
        "ratios are taken per round against the origin alone of the same round, then the median.",
        f"- load average at start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}; "
        f"CPU taken by other processes during runs (shared machine): median {med(foreign) or 0:.0%}, max {max(foreign, default=0):.0%} of all cores; "
        f"a run during which others took more than {m.get('max_foreign', 0):.0%} was repeated (up to {m.get('retries', 0)} times; "
        f"{sum(r.get('attempts', 1) - 1 for r in runs)} repeats in all)",
        "- load generator: bench/loadgen (hyper, one keep-alive connection per worker, SigV4 header-signed by aws-sigv4, "
        "re-signed every 60 s); it shares the machine's cores with the targets.",
        "",
    ]
    for s in results["scenarios"]:
        lines += [f"## {s['title']}", ""]
        for pt in s["points"]:
            lines += table_small(pt) if s["kind"] == "small" else table_big(s, pt)
            lines.append("")
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for name, measured, ok in checks(results):
        lines.append(f"| {name} | {measured} | {'yes' if ok else ('no' if ok is False else '–')} |")
    lines += ["", "![ratios](ratios.svg)", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ svg

def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


BARS = (
    # (id, numerator, denominator, colour)
    ("nginx", "nginx", "origin", "#8c8c8c"),
    ("proxy", "proxy", "origin", "#1f77b4"),
    ("proxy_vs_nginx", "proxy", "nginx", "#2ca02c"),
    ("proxy_s3sfs", "proxy_s3sfs", "s3sfs", "#ff7f0e"),
)


def svg(results) -> str:
    """Horizontal bars per scenario point: throughput ratios (the origin alone, nginx
    proxy_pass and s3-resign-proxy from the same round), median with min–max whiskers,
    lines at 0.95 and 1."""
    groups = []
    for s in results["scenarios"]:
        key = "rps" if s["kind"] == "small" else "mb_per_s"
        unit = "req/s" if key == "rps" else "MB/s"
        for pt in s["points"]:
            bars = []
            for bid, num, den, colour in BARS:
                vals = [v for v in ratio(pt["runs"], num, den, key) if v is not None]
                if vals:
                    bars.append((colour, med(vals), min(vals), max(vals)))
            if bars:
                groups.append((f"{s['title'].split(',')[0]} · {pt['label']} ({unit})", bars))
    bar_h, gap, left, width, top = 13, 12, 330, 460, 58
    xmax = max([1.2] + [b[3] for _, bars in groups for b in bars])
    xmax = min(max(xmax * 1.05, 1.2), 3.0)
    plot_h = sum(len(b) * bar_h + gap for _, b in groups)
    height = top + plot_h + 40 + 16 * len(BARS) + 10
    X = lambda v: left + min(v, xmax) / xmax * width  # noqa: E731
    m = results["meta"]
    o = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 50}" height="{height}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14" font-weight="bold">s3-resign-proxy load benchmark: throughput ratios, same run</text>',
        f'<text x="10" y="36" fill="#555">{esc(m["date"])}, {m["cores"]} cores ({esc(m["cpu"])}); median of {m["rounds"]} '
        f'interleaved round(s), whiskers min–max; {"SMOKE RUN, not meaningful" if m["smoke"] else esc(m["command"].strip())}</text>',
    ]
    # grid
    tick = 0.25 if xmax <= 1.6 else 0.5
    v = 0.0
    while v <= xmax + 1e-9:
        o.append(f'<line x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{top - 6}" y2="{top + plot_h}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{X(v):.1f}" y="{top + plot_h + 12}" text-anchor="middle" font-size="10" fill="#555">{v:g}</text>')
        v += tick
    y = top
    for label, bars in groups:
        o.append(f'<text x="{left - 8}" y="{y + len(bars) * bar_h / 2 + 4}" text-anchor="end">{esc(label)}</text>')
        for colour, med_, lo, hi in bars:
            o.append(f'<rect x="{left}" y="{y + 1}" width="{X(med_) - left:.1f}" height="{bar_h - 2}" fill="{colour}"/>')
            o.append(f'<line x1="{X(lo):.1f}" x2="{X(hi):.1f}" y1="{y + bar_h / 2}" y2="{y + bar_h / 2}" stroke="black"/>')
            o.append(f'<text x="{X(max(med_, hi)) + 4:.1f}" y="{y + bar_h - 3}" font-size="10">{med_:.2f}</text>')
            y += bar_h
        y += gap
    for v, dash in ((0.95, "2,3"), (1.0, "5,3")):
        o.append(f'<line x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{top - 6}" y2="{top + plot_h}" stroke="#c00" stroke-dasharray="{dash}"/>')
    o.append(f'<text x="{X(0.95) - 2:.1f}" y="{top - 9}" text-anchor="end" font-size="10" fill="#c00">0.95</text>')
    o.append(f'<text x="{X(1.0) + 2:.1f}" y="{top - 9}" font-size="10" fill="#c00">1</text>')
    ly = top + plot_h + 34
    for bid, num, den, colour in BARS:
        o.append(f'<rect x="{left}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        o.append(f'<text x="{left + 18}" y="{ly}">{esc(NAMES[num])}  ÷  {esc(NAMES[den])}</text>')
        ly += 16
    o.append("</svg>")
    return "\n".join(o) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "out/results.json")
    res = json.loads(path.read_text())
    (path.parent / "results.md").write_text(markdown(res))
    (path.parent / "ratios.svg").write_text(svg(res))
    print(markdown(res))
