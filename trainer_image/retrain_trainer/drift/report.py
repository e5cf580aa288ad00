"""A self-contained HTML drift report: a verdict table and one reference-vs-current plot per feature.

Plots are matplotlib PNGs embedded as data URIs; the page loads nothing from the network.
Numeric histograms use the reference's quantile bins (equal reference mass per bin), so the
current data's counts come straight from the streaming check's per-sample-point counts.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

PLOT_BINS = 30
TOP_CATEGORIES = 15


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _numeric_plot(plt: Any, name: str, accumulator: Any) -> str:
    """Reference vs current from the check's counts at the reference sample points.

    Few distinct values (counts, ratings): one bar per value, since quantile or equal-width bins
    would split or merge them arbitrarily. Otherwise about PLOT_BINS equal-width bins over the
    central 99 % of the reference, each edge snapped to a sample point so both masses are exact.
    """
    sample = accumulator.sample
    m, n = len(sample), accumulator.count
    figure, axis = plt.subplots(figsize=(5.2, 2.6))
    distinct = np.unique(sample)
    if m >= 2 and n:
        if len(distinct) <= PLOT_BINS:
            first = np.searchsorted(sample, distinct, side="left")
            last = np.searchsorted(sample, distinct, side="right") - 1
            positions = np.arange(len(distinct))
            axis.bar(positions - 0.2, (last - first + 1) / m, 0.4, label="reference")
            axis.bar(positions + 0.2, (accumulator.at_or_below[last] - accumulator.below[first]) / n, 0.4,
                     label="current")
            axis.set_xticks(positions, [f"{value:g}" for value in distinct], fontsize=7)
            axis.set_ylabel("share")
        else:
            low, high = np.quantile(sample, [0.005, 0.995])
            cuts = np.searchsorted(sample, np.linspace(low, high, PLOT_BINS + 1), side="right") - 1
            cuts = np.unique(cuts[cuts >= 0])  # the last index of each edge's value: edges are distinct
            edges = sample[cuts]
            widths = np.diff(edges)
            axis.stairs(np.diff(cuts) / m / widths, edges, fill=True, alpha=0.45, label="reference")
            axis.stairs(np.diff(accumulator.at_or_below[cuts]) / n / widths, edges, fill=True, alpha=0.45,
                        label="current")
            axis.set_ylabel("density")
            axis.set_xlabel("central 99 % of the reference", fontsize=7)
        axis.legend(loc="upper right", fontsize=8)
    axis.set_title(name, fontsize=10)
    plt.close(figure)
    return _png(figure)


def _categorical_plot(plt: Any, name: str, accumulator: Any) -> str:
    reference, current = accumulator.reference, accumulator.counts
    total_r, total_c = max(sum(reference.values()), 1), max(sum(current.values()), 1)
    categories = sorted(set(reference) | set(current), key=lambda c: -(reference.get(c, 0) + current.get(c, 0)))
    categories = categories[:TOP_CATEGORIES]
    positions = np.arange(len(categories))
    figure, axis = plt.subplots(figsize=(5.2, 2.6))
    axis.bar(positions - 0.2, [reference.get(c, 0) / total_r for c in categories], 0.4, label="reference")
    axis.bar(positions + 0.2, [current.get(c, 0) / total_c for c in categories], 0.4, label="current")
    axis.set_xticks(positions, [str(c)[:12] for c in categories], rotation=45, fontsize=7)
    axis.set_ylabel("share")
    axis.set_title(name, fontsize=10)
    axis.legend(loc="upper right", fontsize=8)
    plt.close(figure)
    return _png(figure)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value else f"{value:.4f}"
    return html.escape(str(value))


def _insufficient(document: dict[str, Any]) -> str:
    short = document.get("insufficientFeatures") or []
    if not short:
        return ""
    return (f"; {len(short)} not judged, with fewer than {document.get('minRows')} values: "
            f"{html.escape(', '.join(short[:10]))}{' ...' if len(short) > 10 else ''}")


def _performance_verdict(performance: dict[str, Any]) -> str:
    drop = performance.get("dropInterval")
    interval = (f"; drop {_number(performance.get('drop'))}, {performance.get('confidence', 0):.0%} interval "
                f"{_number(drop[0])}..{_number(drop[1])}" if drop else "")
    if performance.get("verdict") == "insufficientData":
        return " — not judged: " + html.escape(str(performance.get("message", "too few labelled rows")))
    return interval + (" — DRIFT" if performance.get("drifted") else "")


def render_html(document: dict[str, Any], profile: dict[str, Any], check: Any) -> str:
    """The report of one check: `document` is its drift.json, `check` the DriftCheck that produced it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, plots = [], []
    # Drifted features first, most drifted first: the page answers "what moved" at the top.
    ordered = sorted(document["features"].items(), key=lambda item: (not item[1]["drifted"], -item[1]["score"]))
    for name, feature in ordered:
        accumulator = check.columns[name]
        verdict = "DRIFT" if feature["drifted"] else "too few values" if feature.get("insufficient") else "ok"
        if feature["kind"] == "numeric":
            tests = (f"PSI {_number(feature['psi'])} · KS D {_number(feature['ksStatistic'])} "
                     f"(p {_number(feature['ksPValue'])}) · W1/std {_number(feature['wassersteinNormalized'])}")
            image = _numeric_plot(plt, name, accumulator)
        else:
            tests = (f"PSI {_number(feature['psi'])} · χ² p {_number(feature['chi2PValue'])} · "
                     f"JS {_number(feature['jensenShannon'])} (net of noise "
                     f"{_number(feature.get('jensenShannonNet'))})")
            if feature.get("unseenCategories"):
                tests += (f" · unseen {_number(feature.get('unseenShare'))} of rows: " +
                          html.escape(", ".join(map(str, feature["unseenCategories"][:5]))))
            image = _categorical_plot(plt, name, accumulator)
        rows.append(f"<tr class='{verdict.split()[0].lower()}'><td>{html.escape(name)}</td><td>{feature['kind']}</td>"
                    f"<td>{verdict}</td><td>{tests}</td><td>{_number(feature['nullShare'])}</td></tr>")
        plots.append(f"<figure><img alt='{html.escape(name)}' src='{image}'>"
                     f"<figcaption>{html.escape(name)}: {verdict}</figcaption></figure>")
    performance = document.get("performance") or {}
    performance_line = (f"<p>Performance: {performance.get('metric')} {_number(performance.get('value'))} on "
                        f"{performance.get('rows')} labeled rows (held-out {_number(performance.get('heldOut'))})"
                        f"{_performance_verdict(performance)}</p>" if performance else "")
    verdict = ("Drift detected" if document.get("drift") else
               "Insufficient data: no verdict" if document.get("verdict") == "insufficient-data" else "No drift")
    extra = document.get("extraColumns") or []
    extra_line = (f"<p>Columns the reference does not have (not checked): {html.escape(', '.join(extra))}</p>"
                  if extra else "")
    if document.get("checkId"):
        source = (f"Check {html.escape(str(document['checkId']))} of model "
                  f"{html.escape(str(document.get('modelVersion', '-')))}")
    else:
        source = (f"{html.escape(str(document.get('current', 'current data')))} against "
                  f"{html.escape(str(document.get('reference', 'the reference')))}")
    thresholds = html.escape(", ".join(f"{k}={v}" for k, v in (document.get("thresholds") or {}).items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift report {html.escape(str(document.get('checkId', '')))}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
tr.drift td {{ background: #fde2e1; }} figure {{ display: inline-block; margin: 0.5em; }}
figcaption {{ font-size: 12px; text-align: center; }}
</style></head><body>
<h1>{verdict}</h1>
<p>{source}:
{document.get('rows')} current rows against a profile of {profile.get('rows')} training rows;
{len(document.get('driftedFeatures') or [])} of {len(document['features'])} features drifted
(share {_number(document.get('driftedShare'))}){_insufficient(document)}.</p>
{extra_line}
{performance_line}
<table><tr><th>feature</th><th>kind</th><th>verdict</th><th>statistics</th><th>null share</th></tr>
{''.join(rows)}</table>
<p><small>Thresholds: {thresholds}</small></p>
{''.join(plots)}
</body></html>
"""
