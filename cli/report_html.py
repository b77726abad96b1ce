"""Self-contained HTML report: inline CSS and inline SVG drawn here, no script, no network.

Why no plotting library: the report must open years later, offline, on a phone, from a mail
attachment. Inline SVG with a viewBox scales to any width, needs no JavaScript and nothing is
fetched at view time; a Content-Security-Policy forbids any load or script as a second guard.
Every string that came from outside (athlete names, devices, sensors, file names, notes) goes
through `esc` (html.escape with quotes), so a crafted name renders as text, never as markup.

Each plotted data point is an SVG element with class "pt" (tests count them in a real browser).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from evenstride.cli.report_render import STATE_TEXT
from evenstride.metrics.report_data import ReportData, RunDetail
from evenstride.metrics.summary import NO_BALANCE_FLAG
from evenstride.metrics.zones import GREEN_LIMIT_PP, ORANGE_LIMIT_PP, zone_of_d

W, H = 520, 260
ML, MR, MT, MB = 46, 96, 10, 34  # margins: left axis labels, right zone labels, top, bottom
ZONE_FILL = {"green": "#dcf1e0", "orange": "#fde7cc", "red": "#f8d3cf"}
ZONE_INK = {"green": "#1b7f37", "orange": "#c96a00", "red": "#b3261e", None: "#555"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root{color-scheme:light}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;
background:#f6f7f8}
main{max-width:980px;margin:0 auto;padding:12px}
section.athlete{background:#fff;border-radius:10px;padding:12px 14px;margin:0 0 18px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.35em;margin:.3em 0}h2{font-size:1.2em;margin:.2em 0 .5em}
h3{font-size:1.02em;margin:1.1em 0 .3em}
.verdict{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px}
.card{border:1px solid #e1e4e8;border-radius:8px;padding:8px 10px}
.card b{display:block;font-size:1.05em}
.zone-green{color:#1b7f37}.zone-orange{color:#c96a00}.zone-red{color:#b3261e}
.muted{color:#5b6570;font-size:.92em}
.nodata{border:1px dashed #b9c0c7;border-radius:8px;padding:10px;color:#5b6570;background:#fafbfc}
figure{margin:6px 0 14px}figcaption{font-size:.88em;color:#5b6570}
svg.plot{width:100%;height:auto;display:block;background:#fff}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;font-size:.86em;min-width:100%}
th,td{padding:3px 6px;border-bottom:1px solid #eceff1;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:6px}
"""


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _f(v: float) -> str:
    """Compact coordinate text (2 decimals) for SVG attributes."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- scales and ticks


class Scale:
    """Linear map from data [lo, hi] to pixels [p0, p1]."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float) -> None:
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1

    def __call__(self, v: float) -> float:
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values between lo and hi (1, 2, 2.5, 5 x 10^k steps)."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _days(ts: Any) -> float:
    """Timestamp -> days since the Unix epoch (float), the x unit of time plots."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.value / 86_400e9


def date_ticks(lo: float, hi: float, n: int = 5) -> list[tuple[float, str]]:
    """(day value, label) ticks at whole days, weeks or months, about n of them."""
    span = max(hi - lo, 1.0)
    epoch = date(1970, 1, 1)
    labels: list[tuple[float, str]] = []
    if span > 120:
        months = max(1, round(span / 30.4 / n))
        d0 = epoch + timedelta(days=math.floor(lo))
        y, m = d0.year, d0.month
        while True:
            m += 1
            if m > 12:
                y, m = y + 1, 1
            if (m - 1) % months:
                continue
            day = (date(y, m, 1) - epoch).days
            if day > hi:
                break
            labels.append((float(day), f"{y}-{m:02d}"))
        return labels
    step = next(s for s in (1, 2, 7, 14, 28) if span / s <= n + 1) if span <= 140 else 28
    first = math.ceil(lo)
    if step >= 7:  # Mondays (1970-01-01 was a Thursday: day 4 is a Monday)
        first = first + (4 - first) % 7
    day = first
    while day <= hi:
        labels.append((float(day), (epoch + timedelta(days=day)).strftime("%b %d")))
        day += step
    return labels


class Plot:
    """One SVG chart: plot area, axes, and an element list; `svg()` returns the markup."""

    def __init__(self, pid: str, label: str, width: int = W, height: int = H) -> None:
        self.pid, self.label, self.w, self.h = pid, label, width, height
        self.x0, self.x1, self.y0, self.y1 = ML, width - MR, MT, height - MB
        self.parts: list[str] = []
        self.x = Scale(0, 1, self.x0, self.x1)
        self.y = Scale(0, 1, self.y1, self.y0)

    def scales(self, xlo: float, xhi: float, ylo: float, yhi: float) -> None:
        self.x = Scale(xlo, xhi, self.x0, self.x1)
        self.y = Scale(ylo, yhi, self.y1, self.y0)

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def hband(self, lo: float, hi: float, fill: str, label: str | None = None) -> None:
        """A horizontal band between data values lo..hi, clipped to the plot area."""
        a = min(max(self.y(hi), self.y0), self.y1)
        b = min(max(self.y(lo), self.y0), self.y1)
        if b - a <= 0.01:
            return
        self.add(
            f'<rect class="band" x="{_f(self.x0)}" y="{_f(a)}" width="{_f(self.x1 - self.x0)}" '
            f'height="{_f(b - a)}" fill="{fill}"/>'
        )
        if label and b - a >= 11:
            self.add(
                f'<text x="{_f(self.x1 + 3)}" y="{_f((a + b) / 2 + 4)}" font-size="10" '
                f'fill="#5b6570">{esc(label)}</text>'
            )

    def hline(self, v: float, stroke: str = "#9aa4ad", dash: str | None = None) -> None:
        y = self.y(v)
        if self.y0 - 0.5 <= y <= self.y1 + 0.5:
            d = f' stroke-dasharray="{dash}"' if dash else ""
            self.add(
                f'<line x1="{_f(self.x0)}" x2="{_f(self.x1)}" y1="{_f(y)}" y2="{_f(y)}" '
                f'stroke="{stroke}" stroke-width="1"{d}/>'
            )

    def polyline(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        *,
        cls: str,
        stroke: str,
        width: float = 1.6,
        dash: str | None = None,
    ) -> None:
        """A line through finite points; NaN breaks the line into segments."""
        segs: list[list[str]] = [[]]
        for xv, yv in zip(xs, ys, strict=True):
            if math.isfinite(xv) and math.isfinite(yv):
                segs[-1].append(f"{_f(self.x(xv))},{_f(self.y(yv))}")
            elif segs[-1]:
                segs.append([])
        d = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in segs:
            if len(seg) >= 2:
                self.add(
                    f'<polyline class="{cls}" points="{" ".join(seg)}" fill="none" '
                    f'stroke="{stroke}" stroke-width="{width}"{d}/>'
                )

    def point(
        self, xv: float, yv: float, *, fill: str, title: str, hollow: bool = False, r: float = 3.6
    ) -> None:
        cx, cy = self.x(xv), self.y(yv)
        style = f'fill="#fff" stroke="{fill}" stroke-width="1.5"' if hollow else f'fill="{fill}"'
        self.add(
            f'<circle class="pt" cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r)}" {style}>'
            f"<title>{esc(title)}</title></circle>"
        )

    def axes(
        self,
        *,
        xticks: Iterable[tuple[float, str]],
        yticks: Iterable[tuple[float, str]],
        xlabel: str,
        ylabel: str,
    ) -> None:
        ax = [
            f'<rect x="{_f(self.x0)}" y="{_f(self.y0)}" width="{_f(self.x1 - self.x0)}" '
            f'height="{_f(self.y1 - self.y0)}" fill="none" stroke="#c5ccd3"/>'
        ]
        for v, lab in xticks:
            x = self.x(v)
            if self.x0 - 0.5 <= x <= self.x1 + 0.5:
                ax.append(
                    f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(self.y1)}" y2="{_f(self.y1 + 4)}" '
                    f'stroke="#8a949e"/><text x="{_f(x)}" y="{_f(self.y1 + 16)}" font-size="12" '
                    f'text-anchor="middle" fill="#3d4650">{esc(lab)}</text>'
                )
        for v, lab in yticks:
            y = self.y(v)
            if self.y0 - 0.5 <= y <= self.y1 + 0.5:
                ax.append(
                    f'<line x1="{_f(self.x0 - 4)}" x2="{_f(self.x0)}" y1="{_f(y)}" y2="{_f(y)}" '
                    f'stroke="#8a949e"/><text x="{_f(self.x0 - 6)}" y="{_f(y + 4)}" '
                    f'font-size="12" text-anchor="end" fill="#3d4650">{esc(lab)}</text>'
                )
        ax.append(
            f'<text x="{_f((self.x0 + self.x1) / 2)}" y="{_f(self.h - 4)}" font-size="12.5" '
            f'text-anchor="middle" fill="#3d4650">{esc(xlabel)}</text>'
            f'<text transform="translate(13,{_f((self.y0 + self.y1) / 2)}) rotate(-90)" '
            f'font-size="12.5" text-anchor="middle" fill="#3d4650">{esc(ylabel)}</text>'
        )
        self.parts += ax  # after the bands and points: the frame stays visible on top

    def svg(self) -> str:
        return (
            f'<svg class="plot" id="{esc(self.pid)}" viewBox="0 0 {self.w} {self.h}" '
            f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{esc(self.label)}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(self.parts)}</svg>'
        )


def _num_ticks(lo: float, hi: float, n: int = 5, digits: int = 1) -> list[tuple[float, str]]:
    return [(v, f"{v:.{digits}f}") for v in nice_ticks(lo, hi, n)]


def _pad(lo: float, hi: float, frac: float = 0.06, min_span: float = 0.0) -> tuple[float, float]:
    span = max(hi - lo, min_span)
    mid = (hi + lo) / 2
    return mid - span / 2 - span * frac, mid + span / 2 + span * frac


def zone_bands(p: Plot) -> None:
    """Garmin's zones as bands around 50 %L (green / orange / red, mirrored below 50)."""
    g, o = GREEN_LIMIT_PP, ORANGE_LIMIT_PP
    p.hband(50 + o, 100, ZONE_FILL["red"], "red > 52.2")
    p.hband(50 + g, 50 + o, ZONE_FILL["orange"], "orange 50.8-52.2")
    p.hband(50 - g, 50 + g, ZONE_FILL["green"], "green 49.3-50.7")
    p.hband(50 - o, 50 - g, ZONE_FILL["orange"], "orange 47.8-49.2")
    p.hband(0, 50 - o, ZONE_FILL["red"], "red < 47.8")
    p.hline(50.0, "#7d8790", "2 3")


def _balance_range(values: Iterable[float]) -> tuple[float, float]:
    vals = [v for v in values if math.isfinite(v)]
    lo = min([47.0, *vals]) if vals else 47.0
    hi = max([53.0, *vals]) if vals else 53.0
    return lo - 0.3, hi + 0.3


# --------------------------------------------------------------------------- the plots


def balance_plot(rep: ReportData, pid: str) -> str:
    """GCT balance per run over time, Garmin zone bands, detector baseline and +-MDC95 limits."""
    runs = rep.runs[np.isfinite(rep.runs["d"].to_numpy(float))]
    t = [_days(s) for s in runs["start_time"]]
    comparable = runs["balance_comparable"].to_numpy(bool)
    shown = np.where(
        comparable & np.isfinite(runs["detector_d"].to_numpy(float)),
        runs["detector_d"].to_numpy(float),
        runs["d"].to_numpy(float),
    )
    y_all = [*(50 + shown)]
    base = runs["baseline_d"].to_numpy(float)
    mdc = runs["mdc95"].to_numpy(float)
    y_all += [*(50 + base + mdc), *(50 + base - mdc)]
    p = Plot(pid, "GCT balance per run with Garmin zones and the detector's baseline and limits")
    xlo, xhi = _pad(min(t), max(t), 0.04, 1.0)
    ylo, yhi = _balance_range(y_all)
    p.scales(xlo, xhi, ylo, yhi)
    zone_bands(p)
    comp_t = [tv for tv, c in zip(t, comparable, strict=True) if c]
    p.polyline(comp_t, list(50 + base[comparable]), cls="baseline", stroke="#2b5d9b", width=2)
    for sign in (1, -1):
        p.polyline(
            comp_t,
            list(50 + base[comparable] + sign * mdc[comparable]),
            cls="limit",
            stroke="#2b5d9b",
            width=1.2,
            dash="5 4",
        )
    for k, row in enumerate(runs.itertuples(index=False)):
        val = 50 + float(shown[k])
        title = (
            f"{row.date}: {val:.2f} %L (d {float(shown[k]):+.2f} pp, {row.zone})"
            f"{'' if comparable[k] else ', not comparable'}; {row.sensor or ''} {row.file_name or ''}"
        )
        p.point(
            t[k], val, fill=ZONE_INK.get(row.zone, "#555"), title=title, hollow=not comparable[k]
        )
    p.axes(
        xticks=date_ticks(xlo, xhi),
        yticks=_num_ticks(ylo, yhi, 6),
        xlabel="run date",
        ylabel="GCT balance (% left)",
    )
    return p.svg()


def detail_plots(detail: RunDetail, pid: str) -> str:
    """The latest balance run: balance over running time, and balance against speed."""
    xs = np.asarray(detail.elapsed_min, float)
    bal = np.asarray(detail.balance_pct, float)
    spd = np.asarray(detail.speed_mps, float)
    clean = np.asarray(detail.clean, bool)
    ylo, yhi = _balance_range(bal)
    a = Plot(f"{pid}-time", "GCT balance over the run", height=250)
    a.scales(0, max(float(xs.max()) + 0.5, 1.0), ylo, yhi)
    zone_bands(a)
    a.polyline(list(xs), list(bal), cls="trace", stroke="#6b7a89", width=1)
    for k in range(len(xs)):
        a.point(
            xs[k], bal[k], fill="#2b5d9b", r=2.6, hollow=not clean[k],
            title=f"{xs[k]:.1f} min: {bal[k]:.2f} %L" + ("" if clean[k] else " (not clean)"),
        )  # fmt: skip
    a.axes(
        xticks=_num_ticks(0, float(xs.max()), 6, 0),
        yticks=_num_ticks(ylo, yhi, 5),
        xlabel=f"running time (min), {detail.window_s:g}-s medians",
        ylabel="balance (% left)",
    )
    ok = np.isfinite(spd)
    if ok.any():
        b = Plot(f"{pid}-speed", "GCT balance against speed in the run", height=250)
        slo, shi = _pad(float(spd[ok].min()), float(spd[ok].max()), 0.08, 0.4)
        b.scales(slo, shi, ylo, yhi)
        zone_bands(b)
        for k in np.flatnonzero(ok):
            b.point(
                spd[k], bal[k], fill="#2b5d9b", r=2.6, hollow=not clean[k],
                title=f"{spd[k]:.2f} m/s: {bal[k]:.2f} %L",
            )  # fmt: skip
        b.axes(
            xticks=_num_ticks(slo, shi, 5, 1),
            yticks=_num_ticks(ylo, yhi, 5),
            xlabel="speed (m/s)",
            ylabel="balance (% left)",
        )
        second = b.svg()
    else:
        second = '<p class="nodata">no speed data in this run</p>'
    return f'<div class="grid2"><figure>{a.svg()}</figure><figure>{second}</figure></div>'


def cadence_plot(rep: ReportData, pid: str) -> str | None:
    """Cadence against speed: one point per run and the athlete's cadence-speed fit line."""
    runs = rep.runs
    sp = runs["speed_median_mps"].to_numpy(float)
    cd = runs["cadence_median"].to_numpy(float)
    ok = np.isfinite(sp) & np.isfinite(cd) & (sp > 0) & (cd > 0)
    if not ok.any():
        return None
    p = Plot(pid, "Cadence against speed per run with the athlete's fit line")
    xlo, xhi = _pad(float(sp[ok].min()), float(sp[ok].max()), 0.08, 0.5)
    fit = rep.cadence_fit
    line_y = [] if fit is None else list(fit.predict([xlo, xhi]))
    ylo, yhi = _pad(min([*cd[ok], *line_y]), max([*cd[ok], *line_y]), 0.1, 6.0)
    p.scales(xlo, xhi, ylo, yhi)
    if fit is not None:
        p.polyline([xlo, xhi], line_y, cls="fit", stroke="#c96a00", width=2)
    for k in np.flatnonzero(ok):
        p.point(
            sp[k], cd[k], fill="#2b5d9b",
            title=f"{runs['date'].iat[k]}: {cd[k]:.1f} spm at {sp[k]:.2f} m/s",
        )  # fmt: skip
    p.axes(
        xticks=_num_ticks(xlo, xhi, 5, 1),
        yticks=_num_ticks(ylo, yhi, 5, 0),
        xlabel="median speed (m/s)",
        ylabel="cadence (steps/min)",
    )
    return p.svg()


def weekly_plot(rep: ReportData, pid: str) -> str | None:
    """Minutes per week (bars, run count on top) and the week's median d (points, zones)."""
    wk = rep.weekly
    if not len(wk):
        return None
    n = len(wk)
    p = Plot(pid, "Weekly running minutes and median GCT balance deviation", height=300)
    top_lo, top_hi = p.y0, p.y0 + (p.y1 - p.y0) * 0.48
    bot_lo, bot_hi = top_hi + 16, p.y1
    slot = (p.x1 - p.x0) / n
    mmax = max(float(wk["minutes"].max()), 1.0)
    p.add(
        f'<text x="{_f(p.x0 + 3)}" y="{_f(top_lo + 11)}" font-size="11" fill="#5b6570">'
        f"minutes/week (max {mmax:.0f}), runs on top</text>"
    )
    for k, w in enumerate(wk.itertuples(index=False)):
        x = p.x0 + slot * k + slot * 0.15
        hgt = (top_hi - top_lo - 14) * float(w.minutes) / mmax
        if w.runs:
            p.add(
                f'<rect class="pt bar" x="{_f(x)}" y="{_f(top_hi - hgt)}" '
                f'width="{_f(slot * 0.7)}" height="{_f(max(hgt, 0.5))}" fill="#8fb3d9">'
                f"<title>{esc(f'week of {w.week_start}: {w.runs} runs, {w.minutes:.0f} min')}"
                f"</title></rect>"
            )
            if slot >= 9:
                p.add(
                    f'<text x="{_f(x + slot * 0.35)}" y="{_f(top_hi - hgt - 2)}" font-size="9" '
                    f'text-anchor="middle" fill="#3d4650">{int(w.runs)}</text>'
                )
    d = wk["median_d"].to_numpy(float)
    if np.isfinite(d).any():
        lim = max(2.6, float(np.nanmax(np.abs(d))) + 0.3)
        sub = Scale(-lim, lim, bot_hi, bot_lo)
        for lo, hi, zone in (
            (ORANGE_LIMIT_PP, lim, "red"),
            (GREEN_LIMIT_PP, ORANGE_LIMIT_PP, "orange"),
            (-GREEN_LIMIT_PP, GREEN_LIMIT_PP, "green"),
            (-ORANGE_LIMIT_PP, -GREEN_LIMIT_PP, "orange"),
            (-lim, -ORANGE_LIMIT_PP, "red"),
        ):
            p.add(
                f'<rect class="band" x="{_f(p.x0)}" y="{_f(sub(hi))}" '
                f'width="{_f(p.x1 - p.x0)}" height="{_f(sub(lo) - sub(hi))}" '
                f'fill="{ZONE_FILL[zone]}"/>'
            )
        p.add(
            f'<text x="{_f(p.x0 + 3)}" y="{_f(bot_lo + 11)}" font-size="11" fill="#5b6570">'
            f"median d per week (pp, + = left)</text>"
        )
        for v in (-2.0, 0.0, 2.0):
            p.add(
                f'<text x="{_f(p.x0 - 6)}" y="{_f(sub(v) + 4)}" font-size="12" '
                f'text-anchor="end" fill="#3d4650">{v:+.0f}</text>'
            )
        for k, w in enumerate(wk.itertuples(index=False)):
            if math.isfinite(d[k]):
                cx = p.x0 + slot * (k + 0.5)
                p.add(
                    f'<circle class="pt" cx="{_f(cx)}" cy="{_f(sub(d[k]))}" r="3.4" '
                    f'fill="{ZONE_INK[zone_of_d(d[k])]}"><title>'
                    f"{esc(f'week of {w.week_start}: median d {d[k]:+.2f} pp')}</title></circle>"
                )
    step = max(1, math.ceil(n / 6))
    ticks = [
        (p.x0 + slot * (k + 0.5), wk["week_start"].iat[k].strftime("%b %d"))
        for k in range(0, n, step)
    ]
    p.x = Scale(p.x0, p.x1, p.x0, p.x1)
    p.axes(xticks=ticks, yticks=[], xlabel="week (Monday)", ylabel="")
    return p.svg()


# --------------------------------------------------------------------------- page


def _card(title: str, value: str, detail: str = "", zone: str | None = None) -> str:
    cls = f' class="zone-{esc(zone)}"' if zone in ZONE_FILL else ""
    return (
        f'<div class="card"><span class="muted">{esc(title)}</span><b{cls}>{esc(value)}</b>'
        f'<span class="muted">{esc(detail)}</span></div>'
    )


def _verdict_cards(rep: ReportData) -> str:
    b, c, cov = rep.balance, rep.cadence, rep.coverage
    cards = []
    if rep.has_balance:
        extra = f"since {b.since}" if b.shifted and b.since else STATE_TEXT.get(b.state, "")
        cards.append(_card("GCT balance trend", b.state.replace("_", " "), extra))
        if rep.latest is not None:
            lt = rep.latest
            cards.append(
                _card(
                    "latest run d",
                    f"{lt.d:+.2f} pp ({lt.balance_pct:.2f} %L) {lt.zone}",
                    f"{lt.date}" + ("" if lt.comparable else ", not comparable"),
                    lt.zone,
                )
            )
        if b.baseline_level is not None and b.mdc95 is not None:
            cards.append(
                _card(
                    "baseline and limits",
                    f"{50 + b.baseline_level:.2f} %L +- {b.mdc95:.2f} pp",
                    f"MDC95; TE {b.te:.2f} pp over {b.n_runs} comparable runs",
                )
            )
    else:
        cards.append(_card("GCT balance", NO_BALANCE_FLAG, "cadence trends only"))
    cad_val = "-" if c.current is None else f"{c.current:.1f} spm"
    fit = rep.cadence_fit
    cards.append(
        _card(
            "cadence trend",
            f"{c.state.replace('_', ' ')}: {cad_val}",
            "" if fit is None else f"pace-adjusted to {fit.reference_speed_mps:.2f} m/s",
        )
    )
    cards.append(
        _card(
            "data coverage",
            f"{cov.runs} runs, {cov.runs_with_balance} with balance",
            f"{cov.clean_minutes:.0f} clean min ({cov.balance_minutes:.0f} with balance)",
        )
    )
    syncs = ", ".join(f"{k} {v}" for k, v in sorted(rep.sync.items())) or "never synced"
    cards.append(_card("last run", f"{cov.last_run or '-'}", syncs))
    return f'<div class="verdict">{"".join(cards)}</div>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _fmt(v: Any, digits: int) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    return f"{x:.{digits}f}" if math.isfinite(x) else ""


def athlete_section(rep: ReportData, idx: int) -> str:
    """One athlete's part of the page."""
    pid = f"a{idx}"
    cov = rep.coverage
    out = [
        f'<section class="athlete" id="{pid}"><h2>Athlete {esc(rep.athlete or "-")}</h2>',
        f'<p class="muted">{cov.runs} runs, {esc(cov.first_run)} .. {esc(cov.last_run)}; '
        f"sensors: {esc(', '.join(cov.sensors) or 'none')}; devices: "
        f"{esc(', '.join(cov.devices) or '-')}</p>",
    ]
    if not cov.runs:
        out.append('<p class="nodata">no runs stored</p></section>')
        return "".join(out)
    out.append(_verdict_cards(rep))
    notes = list(dict.fromkeys([*rep.notes, *rep.balance.notes, *rep.cadence.notes]))
    if notes:
        out.append("<ul>" + "".join(f'<li class="muted">{esc(n)}</li>' for n in notes) + "</ul>")
    out.append("<h3>GCT balance per run</h3>")
    if rep.has_balance and np.isfinite(rep.runs["d"].to_numpy(float)).any():
        out.append(
            f"<figure>{balance_plot(rep, f'{pid}-balance')}<figcaption>Filled: comparable runs "
            "(what the detector sees); hollow: other runs. Solid blue: the detector's rolling "
            "baseline; dashed: baseline +- MDC95. Bands: Garmin's zones.</figcaption></figure>"
        )
    else:
        out.append(f'<p class="nodata">{esc(NO_BALANCE_FLAG)}: GCT balance needs a chest strap '
                   "or a running-dynamics pod; cadence trends are below.</p>")  # fmt: skip
    out.append("<h3>Latest run with balance</h3>")
    if rep.detail is not None and rep.detail.elapsed_min:
        out.append(
            f'<p class="muted">{esc(rep.detail.start_time)} ({esc(rep.detail.run_id)})</p>'
            + detail_plots(rep.detail, f"{pid}-detail")
        )
    else:
        why = NO_BALANCE_FLAG if not rep.has_balance else "per-record data not available"
        out.append(f'<p class="nodata">{esc(why)}</p>')
    out.append("<h3>Cadence against speed</h3>")
    cad = cadence_plot(rep, f"{pid}-cadence")
    out.append(
        f"<figure>{cad}<figcaption>One point per run; line: the athlete's cadence-speed fit."
        "</figcaption></figure>"
        if cad
        else '<p class="nodata">no cadence and speed data</p>'
    )
    out.append("<h3>Weekly</h3>")
    wplot = weekly_plot(rep, f"{pid}-weekly")
    if wplot:
        out.append(f"<figure>{wplot}</figure>")
    wk_rows = [
        (w.week_start, w.runs, _fmt(w.minutes, 0), _fmt(w.median_d, 2))
        for w in rep.weekly.itertuples(index=False)
    ]
    out.append(_table(("week of", "runs", "minutes", "median d (pp)"), wk_rows))
    run_rows = [
        (
            r.date,
            r.source or "",
            r.device or "",
            r.sensor or "",
            r.file_name or "",
            _fmt(r.running_minutes, 0),
            _fmt(r.balance_minutes, 0),
            _fmt(r.balance_pct, 2),
            r.zone or "",
            "yes" if r.balance_comparable else "",
            _fmt(r.cadence_median, 1),
            _fmt(r.speed_median_mps, 2),
            r.notes,
        )  # fmt: skip
        for r in rep.runs.itertuples(index=False)
    ]
    out.append(
        f"<details><summary>All {len(run_rows)} runs</summary>"
        + _table(
            (
                "date",
                "source",
                "device",
                "sensor",
                "file",
                "min",
                "bal min",
                "%L",
                "zone",
                "compared",
                "spm",
                "m/s",
                "notes",
            ),
            run_rows,
        )  # fmt: skip
        + "</details></section>"
    )
    return "".join(out)


def render_html(
    reports: Sequence[ReportData],
    *,
    title: str = "evenstride report",
    generated: datetime | None = None,
) -> str:
    """The whole self-contained page for one or more athletes (deterministic for fixed input)."""
    when = ""
    if generated is not None:
        when = f" generated {generated.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    body = "".join(athlete_section(rep, k) for k, rep in enumerate(reports))
    if not reports:
        body = '<p class="nodata">no runs stored yet</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body><main><h1>{esc(title)}</h1><p class="muted">GCT balance = % of ground contact '
        "time on the left foot; d = balance - 50 (pp, + = left). Garmin zones: green <= 50.7, "
        f"orange 50.8-52.2, red > 52.2 (mirrored below 50).{esc(when)}</p>"
        f"{body}</main></body></html>\n"
    )
