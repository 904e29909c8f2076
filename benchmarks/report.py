"""Turn the raw results into medians, ratios, goals, a Markdown table and a chart."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

OPS = ["lookup_hit", "lookup_miss", "update"]
OP_LABELS = {
    "lookup_hit": "lookup hit",
    "lookup_miss": "lookup miss",
    "update": "update",
}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def aggregate(raw: dict[str, Any]) -> dict[str, Any]:
    """Median over rounds of every figure, with the spread of throughput."""
    summary: dict[str, Any] = {}
    for name, rounds in raw["rounds"].items():
        entry: dict[str, Any] = {}
        ok = [r for r in rounds if "error" not in r]
        for op in [*OPS, "e2e_invoke", "embed_query"]:
            samples = [r[op] for r in ok if op in r]
            if not samples:
                continue
            tput = [s["ops_per_s"] for s in samples]
            med = _median(tput)
            entry[op] = {
                "ops_per_s": med,
                "ops_per_s_min": min(tput),
                "ops_per_s_max": max(tput),
                "spread_pct": 100 * (max(tput) - min(tput)) / med if med else 0.0,
                "p50_ms": _median([s["p50_ms"] for s in samples]),
                "p99_ms": _median([s["p99_ms"] for s in samples]),
                "ops_per_round": _median([s["ops"] for s in samples]),
                "requests_per_1000": _median(
                    [
                        1000 * s["requests"] / s["ops"]
                        for s in samples
                        if s.get("requests") is not None and s["ops"]
                    ]
                ),
                "rounds": len(samples),
            }
        errors = [r["error"] for r in rounds if "error" in r]
        if errors:
            entry["errors"] = errors
        summary[name] = entry
    return summary


def _get(summary: dict[str, Any], name: str, op: str, key: str = "ops_per_s") -> Any:
    return summary.get(name, {}).get(op, {}).get(key)


PAIRED = "ours / floor, interleaved on one index"
"""The ratio from `workload.measure_paired`: the one the floor goal is judged on."""


def paired_brief(paired: dict[str, Any]) -> dict[str, Any]:
    """One round of the interleaved floor/ours phase, for the log."""
    if "error" in paired:
        return paired
    return {
        f"{name} {op}": round(v["ops_per_s"])
        for name, ops in paired.items()
        for op, v in ops.items()
    }


def paired_ratios(paired: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Median over rounds of ours / floor throughput in the interleaved phase."""
    row: dict[str, Any] = {}
    ok = [p for p in paired or [] if "error" not in p]
    for op in OPS:
        values = [
            p["ours-sync"][op]["ops_per_s"] / p["floor"][op]["ops_per_s"]
            for p in ok
            if op in p.get("floor", {}) and op in p.get("ours-sync", {})
        ]
        row[op] = statistics.median(values) if values else None
    return row


def ratios(
    summary: dict[str, Any], paired: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Throughput ratios (higher is better for ours) computed from this run."""
    out: dict[str, Any] = {}
    if paired:
        out[PAIRED] = paired_ratios(paired)
    pairs = {
        "ours / floor, separate phases": ("ours-sync", "floor"),
        "ours / langchain-elasticsearch": ("ours-sync", "ref-sync"),
        "ours async-64 / langchain-elasticsearch async-64": (
            "ours-async-64",
            "ref-async-64",
        ),
        "ours / Redis": ("ours-sync", "redis"),
        "ours async-64 / ours sync": ("ours-async-64", "ours-sync"),
        "ours semantic / ours exact (sync)": ("semantic-sync", "ours-sync"),
        "ours semantic / ours exact (async c=1)": (
            "semantic-async-1",
            "ours-async-1",
        ),
    }
    for label, (a, b) in pairs.items():
        row = {}
        for op in OPS:
            x, y = _get(summary, a, op), _get(summary, b, op)
            row[op] = x / y if x and y else None
        out[label] = row
    return out


def latency_ratios(summary: dict[str, Any]) -> dict[str, Any]:
    """p50 latency of the semantic cache over the exact cache's (lower is better)."""
    out: dict[str, Any] = {}
    for label, (a, b) in {
        "semantic p50 / exact p50 (sync)": ("semantic-sync", "ours-sync"),
        "semantic p50 / exact p50 (async c=1)": ("semantic-async-1", "ours-async-1"),
    }.items():
        row = {}
        for op in OPS:
            x, y = _get(summary, a, op, "p50_ms"), _get(summary, b, op, "p50_ms")
            row[op] = x / y if x and y else None
        if any(v is not None for v in row.values()):
            out[label] = row
    return out


GOALS = [
    ("lookup hit >= 0.9 x floor throughput (one in flight)", PAIRED, "lookup_hit", 0.9),
    (
        "update >= 5 x langchain-elasticsearch throughput",
        "ours / langchain-elasticsearch",
        "update",
        5.0,
    ),
    (
        "lookup hit >= 1 x langchain-elasticsearch throughput",
        "ours / langchain-elasticsearch",
        "lookup_hit",
        1.0,
    ),
    (
        "async c=64 >= 1.5 x langchain-elasticsearch async c=64 (lookup hit)",
        "ours async-64 / langchain-elasticsearch async-64",
        "lookup_hit",
        1.5,
    ),
    (
        "async c=64 >= 1.5 x langchain-elasticsearch async c=64 (lookup miss)",
        "ours async-64 / langchain-elasticsearch async-64",
        "lookup_miss",
        1.5,
    ),
    (
        "async c=64 >= 10 x langchain-elasticsearch async c=64 (update)",
        "ours async-64 / langchain-elasticsearch async-64",
        "update",
        10.0,
    ),
    (
        "async c=64 >= 5 x sync throughput (lookup hit)",
        "ours async-64 / ours sync",
        "lookup_hit",
        5.0,
    ),
]

TAIL_GOAL = 10.0
"""Most p99 / p50 latency of ours at 64 in flight, each operation."""


def goals(
    ratio: dict[str, Any], summary: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    out = []
    for text, key, op, target in GOALS:
        if key == PAIRED and key not in ratio:
            key = "ours / floor, separate phases"
        value = ratio.get(key, {}).get(op)
        out.append(
            {
                "goal": text,
                "value": value,
                "target": target,
                "met": value is not None and value >= target,
            }
        )
    for op in OPS:
        p50 = _get(summary or {}, "ours-async-64", op, "p50_ms")
        p99 = _get(summary or {}, "ours-async-64", op, "p99_ms")
        value = p99 / p50 if p50 and p99 else None
        out.append(
            {
                "goal": f"async c=64 p99 <= {TAIL_GOAL:.0f} x p50 ({OP_LABELS[op]})",
                "value": value,
                "target": TAIL_GOAL,
                "met": value is not None and value <= TAIL_GOAL,
            }
        )
    return out


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value != value:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ms(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown shown in results.md and the README."""
    summary = report["summary"]
    labels = report["labels"]
    m = report["machine"]
    bench = m["clients"].get("bench", {})
    ref = m["clients"].get("reference", {})
    st = report["settings"]
    lines = [
        f"Measured {m['date']} on {m['cpu_count']} cores ({m['processor']}), "
        f"{m['platform']}, Python {m['python']}; Elasticsearch {m['es_version']} "
        "(one local node, shared by all); elasticsearch-py "
        f"{bench.get('elasticsearch', '?')} for ours and the floor, "
        f"{ref.get('elasticsearch', 'n/a')} for langchain-elasticsearch "
        f"{ref.get('langchain-elasticsearch', 'n/a')}; langchain-core "
        f"{bench.get('langchain-core', '?')}; langchain-redis "
        f"{bench.get('langchain-redis', '?')} with {m['redis_server']} on loopback. "
        f"{st['rounds']} rounds in alternating order, up to {st['n']:,} operations "
        f"per contender, operation and round (at most {st['cap_s']:.0f} s each); "
        "medians over rounds, ± = half the (max - min) spread of throughput. "
        f"Whole run: {report['elapsed_s'] / 60:.1f} min.",
        "",
        "| contender | hit ops/s | hit p50 / p99 ms | miss ops/s | "
        "miss p50 / p99 ms | update ops/s | update p50 / p99 ms | "
        "invoke from cache p50 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, label in labels.items():
        entry = summary.get(name, {})
        cells = [label]
        for op in OPS:
            data = entry.get(op)
            if data is None:
                cells += ["n/a", "n/a"]
                continue
            cells.append(f"{_num(data['ops_per_s'])} (±{data['spread_pct'] / 2:.0f}%)")
            cells.append(f"{_ms(data['p50_ms'])} / {_ms(data['p99_ms'])}")
        e2e = entry.get("e2e_invoke")
        cells.append(_ms(e2e["p50_ms"]) if e2e else "-")
        lines.append("| " + " | ".join(cells) + " |")
    if any("errors" in e for e in summary.values()):
        lines.append("")
        for name, entry in summary.items():
            for error in entry.get("errors", [])[:1]:
                lines.append(f"- {labels.get(name, name)}: failed: `{error}`")
    embed = summary.get("semantic-sync", {}).get("embed_query")
    if embed:
        lines += [
            "",
            "The semantic rows use a hashed bag-of-words embedding into "
            f"256 dimensions ({_ms(embed['p50_ms'])} ms p50 a call, inside every "
            "semantic lookup and update above), so that they measure "
            "Elasticsearch's kNN search and the library; a real embedding "
            "model's time per call comes on top of every semantic lookup and update.",
        ]
    lines += ["", "Ratios of throughput, same run (higher: ours faster):", ""]
    lines += ["| ratio | lookup hit | lookup miss | update |", "|---|--:|--:|--:|"]
    for label, row in report["ratios"].items():
        lines.append(
            f"| {label} | " + " | ".join(_num(row.get(op), 2) for op in OPS) + " |"
        )
    paired = [p for p in report["raw"].get("paired", []) if "error" not in p]
    if paired:
        p50 = {
            name: _median([p[name]["lookup_hit"]["p50_ms"] for p in paired])
            for name in ("floor", "ours-sync")
        }
        lines += [
            "",
            f"*{PAIRED}*: the floor's `get` and our `lookup` take turns in blocks "
            "of 25 on the same documents of one index, so both meet the same "
            "machine load (hit p50: floor "
            f"{_ms(p50['floor'])} ms, ours {_ms(p50['ours-sync'])} ms; throughput "
            "here is 1 / mean latency). *Separate phases* compares the table's "
            "rows, measured at different moments: on a loaded machine that "
            "ratio carries the load's drift between phases.",
        ]
    latency = latency_ratios(summary)
    if latency:
        lines += ["", "Ratios of p50 latency (lower: semantic closer to exact):", ""]
        lines += ["| ratio | lookup hit | lookup miss | update |", "|---|--:|--:|--:|"]
        for label, row in latency.items():
            lines.append(
                f"| {label} | " + " | ".join(_num(row.get(op), 2) for op in OPS) + " |"
            )
    lines += ["", "Goals (reported, not asserted):", ""]
    lines += ["| goal | this run | met |", "|---|--:|:-:|"]
    for goal in report["goals"]:
        lines.append(
            f"| {goal['goal']} | {_num(goal['value'], 2)} x | "
            f"{'yes' if goal['met'] else 'NO'} |"
        )
    sent = {
        name: {op: _get(summary, name, op, "requests_per_1000") for op in OPS}
        for name in labels
        if name.endswith(("async-1", "async-16", "async-64"))
    }
    if any(v for row in sent.values() for v in row.values()):
        lines += [
            "",
            "Requests sent to Elasticsearch per 1,000 operations (counted in the "
            "client's transport during the timed phase):",
            "",
            "| contender | lookup hit | lookup miss | update |",
            "|---|--:|--:|--:|",
        ]
        for name, row in sent.items():
            lines.append(
                f"| {labels[name]} | "
                + " | ".join(_num(row.get(op)) for op in OPS)
                + " |"
            )
    growth = report.get("growth") or {}
    if growth:
        sizes = sorted({int(s) for row in growth.values() for s in row})
        lines += ["", "Lookup-hit p50 (ms) by entries in the index:", ""]
        lines.append(
            "| contender | " + " | ".join(f"{s:,} entries" for s in sizes) + " |"
        )
        lines.append("|---|" + "--:|" * len(sizes))
        for name, row in growth.items():
            cells = [labels.get(name, name)]
            for s in sizes:
                data = row.get(str(s))
                cells.append(
                    _ms(data["p50_ms"])
                    if data and "p50_ms" in data
                    else "failed"
                    if data
                    else "n/a"
                )
            lines.append("| " + " | ".join(cells) + " |")
    clear = report.get("clear") or {}
    if clear:
        lines += ["", f"Clear of {report['settings']['clear_entries']:,} entries:", ""]
        lines += ["| contender | seconds |", "|---|--:|"]
        for name, data in clear.items():
            value = (
                f"{data['seconds']:.1f}"
                if "seconds" in data
                else f"failed: `{data.get('error', '?')[:120]}`"
            )
            lines.append(f"| {labels.get(name, name)} | {value} |")
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    """Bars per contender and operation (throughput), and invoke-from-cache p50."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    labels = report["labels"]
    names = [n for n in labels if summary.get(n)]
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [3, 1.2]}
    )
    width = 0.27
    for k, op in enumerate(OPS):
        xs = [i + (k - 1) * width for i in range(len(names))]
        ys = [_get(summary, n, op) or 0 for n in names]
        errs = [
            [
                (_get(summary, n, op) or 0)
                - (_get(summary, n, op, "ops_per_s_min") or 0)
                for n in names
            ],
            [
                (_get(summary, n, op, "ops_per_s_max") or 0)
                - (_get(summary, n, op) or 0)
                for n in names
            ],
        ]
        ax1.bar(xs, ys, width, label=OP_LABELS[op], yerr=errs, capsize=2)
    ax1.set_yscale("log")
    ax1.set_ylabel("operations per second (log; whiskers: min-max over rounds)")
    ax1.set_xticks(range(len(names)))
    ax1.set_xticklabels([labels[n] for n in names], rotation=30, ha="right", fontsize=8)
    ax1.legend()
    ax1.grid(axis="y", which="both", alpha=0.3)
    ax1.set_title("Cache operations: throughput")
    e2e = [n for n in names if _get(summary, n, "e2e_invoke", "p50_ms")]
    ax2.barh(
        [labels[n] for n in e2e],
        [_get(summary, n, "e2e_invoke", "p50_ms") for n in e2e],
        color="tab:purple",
    )
    ax2.set_xlabel("ms (p50)")
    ax2.set_title("chat model invoke answered from cache")
    ax2.tick_params(axis="y", labelsize=8)
    ax2.invert_yaxis()
    m = report["machine"]
    fig.suptitle(
        f"langchain-es-cache benchmarks: {m['date']}, {m['cpu_count']} cores, "
        f"Python {m['python']}, Elasticsearch {m['es_version']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
