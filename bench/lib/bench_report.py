"""Results as people read them: the machine, medians, ratios in words, tables, JSON and plots."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

from bench_env import ROOT


def _cmd(*cmd: str, stderr: bool = False) -> str:
    try:
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10, check=False)
        return (r.stdout + (r.stderr if stderr else "")).strip()
    except OSError:
        return ""


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    commit = _cmd("git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD")
    dirty = bool(_cmd("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"))
    rtpe = [ln.replace("Version:", "rtpengine").strip()
            for ln in _cmd("rtpengine", "--version", stderr=True).splitlines() if ln.strip()]
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "virtualization": _cmd("systemd-detect-virt") or "unknown",
        "dpdk": _cmd("pkg-config", "--modversion", "libdpdk")
                or _cmd("dpkg-query", "-W", "-f=${Version}", "dpdk"),
        "rtpengine": rtpe[-1] if rtpe else "",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_commit": commit + ("-dirty" if dirty else ""),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def machine_line(m: dict) -> str:
    return (f"{m['cpu_model']}, {m['cpus']} CPUs, {m['memory_gb']} GB, kernel {m['kernel']} "
            f"({m['virtualization']}), DPDK {m['dpdk']}, {m['rtpengine'] or 'rtpengine ?'}; "
            f"git {m['git_commit']}; {m['date']}")


# --- numbers ------------------------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mpps(pps) -> str:
    if pps is None:
        return "—"
    if pps >= 1e6:
        return f"{pps / 1e6:.2f} Mpps"
    if pps >= 1e3:
        return f"{pps / 1e3:.0f} kpps"
    return f"{pps:.0f} pps"


def num(v, fmt: str = "{:.1f}") -> str:
    return "—" if v is None else fmt.format(v)


def ratio_words(a_name: str, a, b_name: str, b) -> str:
    """``rtpx = 87% of testpmd-5tswap`` below 2x, ``rtpx = 12.3x rtpengine`` from 2x on."""
    if not a or not b:
        return f"{a_name} vs {b_name}: not measured"
    r = a / b
    if r < 2:
        return f"{a_name} = {r * 100:.0f}% of {b_name}"
    return f"{a_name} = {r:.1f}x {b_name}"


def gen_summary(j: dict) -> dict:
    """The fields of one rtpx-gen JSON that a scenario keeps."""
    r, s, c = j["results"], j["setup"], j["config"]
    return {
        "flows": c["flows"],
        "sessions": s["sessions"],
        "setup_failed": s["failed"],
        "setup_per_s": s["per_second"],
        "rate_requested_pps": c["rate_pps"],
        "tx_achieved_pps": r["tx"]["achieved_pps"],
        "sent_pps": r["sent_pps"],
        "received_pps": r["received_pps"],
        "sent": r["sent"],
        "sent_total": r["tx"]["sent_total"],
        "received": r["received"],
        "loss_pct": r["loss_pct"],
        "reordered": r["reordered"],
        "duplicates": r["duplicates"],
        "misdirected": r["rx"]["misdirected"],
        "silent_flows": r["silent_flows"],
        "port_busy_bursts": r["tx"]["port_busy_bursts"],
        "latency_us": r["latency_us"],
        "jitter_ms": r["jitter_ms"],
        "frame_bytes": c["frame_bytes"],
        "interrupted": r["interrupted"],
    }


def median_summary(trials: list[dict]) -> dict:
    keys = ["received_pps", "sent_pps", "tx_achieved_pps", "loss_pct", "setup_per_s"]
    out = {k: median([t.get(k) for t in trials]) for k in keys}
    out["received_pps_min"] = min((t["received_pps"] for t in trials), default=None)
    out["received_pps_max"] = max((t["received_pps"] for t in trials), default=None)
    out["latency_us"] = {q: median([t["latency_us"][q] for t in trials])
                         for q in ("p50", "p99", "p99_9", "max")} if trials else {}
    out["trials"] = len(trials)
    return out


# --- checks (targets) -------------------------------------------------------------------------

class Checks:
    """Target lines: what was measured next to what was asked, and whether it was met."""

    def __init__(self, judge: bool):
        self.judge = judge
        self.items: list[dict] = []

    def add(self, target: str, text: str, met: bool | None) -> None:
        if not self.judge:
            met = None
        self.items.append({"target": target, "measured": text, "met": met})

    def note(self, text: str) -> None:
        self.items.append({"target": "", "measured": text, "met": None})

    def lines(self) -> list[str]:
        out = []
        for c in self.items:
            tag = {True: "MET   ", False: "MISSED", None: "      "}[c["met"]]
            if not self.judge and c["target"]:
                tag = "smoke "
            head = f"{c['target']}: " if c["target"] else ""
            out.append(f"  [{tag}] {head}{c['measured']}")
        return out


# --- tables -------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w)  # noqa: E731
                              for i, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] +
                     [fmt(r) for r in cells[1:]])


def markdown_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


# --- plots --------------------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(plt, fig, ax, path: Path, title: str, subtitle: str) -> None:
    ax.set_title(title, fontsize=11)
    fig.text(0.01, 0.01, subtitle, fontsize=6.5, color="#555")
    ax.grid(True, alpha=0.3)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput_vs_sessions(path: Path, rtpx: list[tuple[int, float, float, float]],
                                lines: dict[str, float], subtitle: str) -> None:
    """rtpx: (sessions, median, min, max) in pps; lines: baseline name → pps (horizontal)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if rtpx:
        xs = [r[0] for r in rtpx]
        ys = [r[1] / 1e6 for r in rtpx]
        err = [[(r[1] - r[2]) / 1e6 for r in rtpx], [(r[3] - r[1]) / 1e6 for r in rtpx]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, lw=2, label="rtpxd, 1 worker")
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(6, 6))
    styles = ["--", ":", "-."]
    for i, (name, pps) in enumerate(lines.items()):
        if pps:
            ax.axhline(pps / 1e6, ls=styles[i % 3], color=f"C{i + 1}",
                       label=f"{name} ({pps / 1e6:.2f} Mpps)")
    if rtpx:
        xs = [r[0] for r in rtpx]
        if max(xs) > 3 * min(xs):
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.minorticks_off()
        pad = (max(xs) - min(xs)) * 0.15 or max(xs) * 0.2
        if ax.get_xscale() == "linear":
            ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.set_xlabel("sessions (one RTP stream each)")
    ax.set_ylabel("received Mpps (median of trials, min–max bars)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    _finish(plt, fig, ax, path, "memif pass-through, max rate", subtitle)


def plot_nodrop(path: Path, probes: list[dict], threshold_pct: float, result_pps: float | None,
                subtitle: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    floor = threshold_pct / 100
    for ok in (True, False):
        pts = [(p["rate_pps"] / 1e6, max(p["loss_pct"], floor)) for p in probes
               if p["passed"] == ok]
        if pts:
            ax.scatter(*zip(*pts), marker="o" if ok else "x", s=40,
                       color="C2" if ok else "C3", label="passed" if ok else "failed")
    for i, p in enumerate(probes):
        ax.annotate(str(i + 1), (p["rate_pps"] / 1e6, max(p["loss_pct"], floor)), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.axhline(threshold_pct, color="k", ls="--", lw=1, label=f"loss {threshold_pct} %")
    if result_pps:
        ax.axvline(result_pps / 1e6, color="C2", ls=":", label=f"no-drop {mpps(result_pps)}")
    ax.set_yscale("log")
    ax.set_xlabel("offered Mpps (probe order annotated)")
    ax.set_ylabel("loss % (floored at the threshold / 100)")
    ax.legend(fontsize=8)
    _finish(plt, fig, ax, path, "no-drop rate: binary search (rtpxd, memif)", subtitle)


def plot_latency(path: Path, series: dict[str, list[tuple[float, dict]]], subtitle: str) -> None:
    """series: name → [(load %, {p50, p99, p99_9, max})]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    marks = {"p50": "o", "p99": "s", "p99_9": "^", "max": "v"}
    for si, (name, pts) in enumerate(series.items()):
        ls = "-" if si == 0 else "--"
        for qi, q in enumerate(marks):
            xs = [p[0] for p in pts if p[1].get(q)]
            ys = [p[1][q] for p in pts if p[1].get(q)]
            if xs:
                ax.plot(xs, ys, ls=ls, marker=marks[q], color=f"C{qi}",
                        alpha=1 if si == 0 else 0.55, label=f"{name} {q.replace('_', '.')}")
    ax.axhline(10, color="C0", lw=0.8, ls=":", label="target p50 ≤ 10 µs @ 50 %")
    ax.axhline(50, color="C1", lw=0.8, ls=":", label="target p99 ≤ 50 µs @ 50 %")
    ax.set_yscale("log")
    ax.set_xlabel("load, % of rtpxd's no-drop rate")
    ax.set_ylabel("one-way latency, µs (median of trials)")
    ax.legend(fontsize=6.5, ncol=2)
    _finish(plt, fig, ax, path, "latency vs load (memif)", subtitle)


def plot_bars(path: Path, bars: list[tuple[str, float, list[float]]], ylabel: str, title: str,
              subtitle: str, scale: float = 1.0, fmt: str = "{:.0f}") -> None:
    """bars: (name, median, [trial values]); values divided by ``scale`` for display."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = [b[0].replace(" (", "\n(") for b in bars]
    ax.bar(names, [(b[1] or 0) / scale for b in bars], color=[f"C{i}" for i in range(len(bars))],
           alpha=0.8)
    for i, b in enumerate(bars):
        ax.scatter([i] * len(b[2]), [v / scale for v in b[2]], color="k", s=12, zorder=3)
        if b[1]:
            ax.annotate(fmt.format(b[1] / scale), (i, b[1] / scale), ha="center",
                        textcoords="offset points", xytext=(0, 4))
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelsize=8)
    _finish(plt, fig, ax, path, title, subtitle)
