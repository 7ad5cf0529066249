"""The scenarios of bench/run: each one measures rtpxd and its baselines in the same run,
alternating trials, and returns a result dict (median per target, every trial, target checks)
that bench/run prints, writes as JSON and plots."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import bench_env as env
import bench_report as rep
from bench_env import Cleanup, Workdir, log
from rtpengine import RtpEngine

LOSS_THRESHOLD_PCT = 0.001
VETH_LOSS_PCT = 0.1
GEN_IP = "10.99.0.10"      # memif: rtpx-gen's first address (more follow with --ip-count)
VETH_GEN_IP = "10.98.0.10"
VETH_RTPX_IP = "10.98.0.2"
VETH_RTPE_IP = "10.98.0.1"
REFLECT_DST = "10.99.0.2:30000"
REFLECT_MAC = "02:00:00:00:00:02"


@dataclass
class Options:
    smoke: bool = False
    reps: int = 3
    duration: float = 5.0          # seconds of traffic per trial (warm-up included)
    warmup: float = 1.0
    sessions: list[int] = field(default_factory=lambda: [10000, 100000])
    # rtpxd's addresses on the memif interface: 13,884 sessions fit on each, so eight hold the
    # 100,000-session run.
    rtpx_ips: list[str] = field(default_factory=lambda: [f"10.99.0.{i}" for i in range(2, 10)])
    nodrop_sessions: int = 10000
    nodrop_iterations: int = 7
    nodrop_retries: int = 1
    loads: list[int] = field(default_factory=lambda: [10, 50, 90])
    setup_calls: int = 10000
    setup_concurrency: int = 8
    veth_sessions: int = 1000
    veth_iterations: int = 5
    relay_cpu: int = 1
    gen_cpu: int = 0
    payload: int = 160
    memif_rsize: int = 0           # log2 ring slots; 0: DPDK's default (10: 1024)
    keep_logs: bool = False

    def pinning(self) -> str:
        return (f"CPU pinning: relay forwarding core = CPU {self.relay_cpu} (rtpxd worker, "
                f"testpmd forwarding lcore, rtpengine's only thread); generator = CPU "
                f"{self.gen_cpu} (rtpx-gen TX+RX in one loop; rtpxd's main lcore and control "
                f"threads and testpmd's main lcore share it)")


class Scenario:
    """Shared plumbing: a cleanup stack, a work directory, gen runs, rtpxd trials."""

    name = ""

    def __init__(self, opt: Options, out: Path, shared: dict):
        self.opt = opt
        self.out = out
        self.shared = shared  # results of earlier scenarios in the same run (latency ← no-drop)
        self.checks = rep.Checks(judge=not opt.smoke)
        self.notes: list[str] = []

    # helpers ---------------------------------------------------------------------------------
    def start_rtpengine(self, c, wd, netns: str, port_min: int, log_level: int):
        """rtpengine on the relay CPU in `netns`, media on VETH_RTPE_IP, NG on a free loopback
        port; stopped by the cleanup stack (pop it to stop it earlier). Returns (it, NG port)."""
        port = env.free_port()
        rtpe = RtpEngine(VETH_RTPE_IP, f"127.0.0.1:{port}", netns=netns,
                         cpus=str(self.opt.relay_cpu), port_min=port_min, port_max=60000,
                         log_file=str(wd.file("rtpengine", ".log")), log_level=log_level)
        rtpe.start()
        c.push("stop rtpengine", rtpe.stop)
        return rtpe, port

    def say(self, msg: str) -> None:
        log(f"[{self.name}] {msg}")

    def gen_traffic_args(self, rate: float | None, duration: float | None = None) -> list[str]:
        o = self.opt
        return ["--rate", str(int(rate)) if rate else "0",
                "--duration", str(duration or o.duration), "--warmup", str(o.warmup),
                "--payload-size", str(o.payload), "--drain", "0.2" if o.smoke else "0.5"]

    def memif_args(self) -> str:
        """The generator is memif's client, and the client sizes the rings (2^rsize slots
        each way, for every target alike)."""
        return f",rsize={self.opt.memif_rsize}" if self.opt.memif_rsize else ""

    def rtpx_capacity(self) -> int:
        return env.SESSIONS_PER_IP * len(self.opt.rtpx_ips)

    def gen_ip_args(self, sessions: int, first: str = GEN_IP) -> list[str]:
        n = max(1, math.ceil(sessions / env.SESSIONS_PER_IP))
        return ["--ip", first, "--ip-count", str(n)]

    def rtpx_memif_trial(self, c: Cleanup, wd: Workdir, label: str, sessions: int,
                         rate: float | None, duration: float | None = None) -> dict:
        """A fresh rtpxd (memif server) per trial; the generator sets the sessions up over gRPC
        and keeps them (--keep): stopping rtpxd is faster than deleting 10,000 sessions."""
        o = self.opt
        sock = wd.path / f"rtpxd-{label}.sock"
        cap = sessions * 8 if sessions * 8 > 262144 else None
        d = env.Rtpxd(c, wd, device=f"net_memif0,role=server,socket={sock}",
                      ipv4=o.rtpx_ips, main_cpu=o.gen_cpu, worker_cpu=o.relay_cpu,
                      flow_capacity=cap)
        try:
            env.wait_socket(sock, d.proc)
            j = env.run_gen(c, wd, label,
                            ["--vdev", f"net_memif0,role=client,socket={sock}{self.memif_args()}",
                             *self.gen_ip_args(sessions), "--setup", "rtpx", "--grpc", d.grpc,
                             "--streams", str(sessions), "--keep",
                             *self.gen_traffic_args(rate, duration)], cpu=o.gen_cpu)
            rtpxd_stats = d.stats()
        finally:
            c.pop(d.proc.stop)
        return {**rep.gen_summary(j), "rtpxd": rtpxd_stats}

    def testpmd_memif_trial(self, c: Cleanup, wd: Workdir, mode: str, streams: int,
                            rate: float | None, duration: float | None = None) -> dict:
        o = self.opt
        sock = wd.path / f"testpmd-{mode}-{time.monotonic_ns()}.sock"
        tp = env.Testpmd(c, wd, vdev=f"net_memif0,role=server,socket={sock}", mode=mode,
                         main_cpu=o.gen_cpu, fwd_cpu=o.relay_cpu)
        try:
            env.wait_socket(sock, tp.proc)
            j = env.run_gen(c, wd, f"testpmd-{mode}",
                            ["--vdev", f"net_memif0,role=client,socket={sock}{self.memif_args()}",
                             *self.gen_ip_args(streams), "--setup", "none", "--dst",
                             REFLECT_DST, "--dst-mac", REFLECT_MAC, "--streams", str(streams),
                             *self.gen_traffic_args(rate, duration)], cpu=o.gen_cpu)
        finally:
            tp.stop()
        s = rep.gen_summary(j)
        if mode == "rxonly":  # nothing comes back: the generator's TX is the figure
            s["received_pps"] = s["sent_pps"]
            s["loss_pct"] = None
            s["latency_us"] = {q: None for q in s["latency_us"]}
        return s

    def subtitle(self, machine: dict) -> str:
        return (f"{machine['cpu_model']}, {machine['cpus']} CPUs, kernel {machine['kernel']}, "
                f"DPDK {machine['dpdk']}, git {machine['git_commit']}, {machine['date']}"
                f"{' — SMOKE' if self.opt.smoke else ''}")

    # the frame -------------------------------------------------------------------------------
    def run(self) -> dict:
        t0 = time.monotonic()
        machine = rep.machine()
        self.say(self.opt.pinning())
        with Cleanup() as c:
            wd = Workdir(c, keep=self.opt.keep_logs)
            body = self.body(c, wd)
            wd.ok = True
        result = {
            "scenario": self.name,
            "smoke": self.opt.smoke,
            "machine": machine,
            "pinning": self.opt.pinning(),
            "options": {k: v for k, v in vars(self.opt).items()},
            **body,
            "checks": self.checks.items,
            "notes": self.notes,
            "wall_seconds": round(time.monotonic() - t0, 1),
        }
        rep.write_json(self.out / f"{self.name}.json", result)
        self.plot(result, self.out / f"{self.name}.png", self.subtitle(machine))
        return result

    def body(self, c: Cleanup, wd: Workdir) -> dict:
        raise NotImplementedError

    def plot(self, result: dict, path: Path, subtitle: str) -> None:
        raise NotImplementedError

    def table(self, result: dict) -> tuple[list[str], list[list]]:
        raise NotImplementedError


def rtpx_loss_place(s: dict) -> str:
    """Where an rtpx trial lost its packets, from rtpxd's own counters: before its RX (the
    link: a kernel af_packet ring or memif ring overflowed) or in rtpxd (named drops)."""
    st = s.get("rtpxd") or {}
    rx = st.get("counters", {}).get("rx_packets")
    if rx is None or not s.get("sent_total"):
        return ""
    before = max(0, s["sent_total"] - rx)
    inside = sum(st.get("drops", {}).values())
    return (f"; rtpxd received {rx:,} of {s['sent_total']:,} sent ({before:,} lost before its "
            f"RX), dropped {inside:,} {st.get('drops') or ''}, idle sleeps "
            f"{st.get('counters', {}).get('idle_sleeps', 0):,}")


def gen_cpu_share(trials: list[dict], cpu: int) -> str:
    """How much of the generator's CPU rtpxd's own threads took (median over trials)."""
    shares, tops = [], {}
    for t in trials:
        tc = (t.get("rtpxd") or {}).get("thread_cpu_s") or {}
        life = tc.get("_lifetime_s")
        if not life:
            continue
        mine = {k: v for k, v in tc.items() if k.endswith(f"@cpu{cpu}")}
        shares.append(sum(mine.values()) / life)
        for k, v in mine.items():
            tops[k.rsplit("@", 1)[0]] = tops.get(k.rsplit("@", 1)[0], 0) + v / life
    if not shares:
        return ""
    top = sorted(tops.items(), key=lambda kv: -kv[1])[:3]
    return (f"rtpxd's own threads took {rep.median(shares) * 100:.0f}% of the generator's CPU "
            f"{cpu} over rtpxd's life (set-up included; "
            + ", ".join(f"{k} {v / len(shares) * 100:.0f}%" for k, v in top) + ")")


def trial_line(label: str, s: dict) -> str:
    lat = s["latency_us"]
    return (f"  {label:<28} rx {rep.mpps(s['received_pps']):>11}  tx {rep.mpps(s['sent_pps']):>11}"
            f"  loss {rep.num(s['loss_pct'], '{:.4f}')}%  p50 {rep.num(lat['p50'])} p99 "
            f"{rep.num(lat['p99'])} µs  port-busy {s['port_busy_bursts']}"
            + (f"  rtpxd drops {s['rtpxd']['drops']}" if s.get("rtpxd", {}).get("drops") else ""))


# --- relay-max --------------------------------------------------------------------------------

class RelayMax(Scenario):
    name = "relay-max"
    REFLECTORS = [("testpmd-5tswap", "5tswap"), ("testpmd-io", "io"),
                  ("generator ceiling (testpmd rxonly)", "rxonly")]

    def body(self, c, wd):
        o = self.opt
        cap = self.rtpx_capacity()
        counts = []
        for n in o.sessions:
            if n > cap:
                msg = (f"{n:,} sessions asked, but rtpxd holds {cap:,}: {len(o.rtpx_ips)} IPv4 "
                       f"address(es) on its interface × {env.SESSIONS_PER_IP:,} sessions per "
                       f"address (ports {env.PORT_MIN}-{env.PORT_MAX}, 4 per call). Running "
                       f"{cap:,} instead; give more addresses with --rtpx-ip.")
                self.say("NOTE: " + msg)
                self.notes.append(msg)
                n = cap
            if n not in counts:
                counts.append(n)
        streams = counts[0]
        self.say(f"sessions {counts}; reflectors fed {streams:,} streams; {o.reps} alternating "
                 f"trial(s) of {o.duration} s ({o.warmup} s warm-up), max rate, "
                 f"{o.payload} B payload")
        trials: dict[str, list[dict]] = {}
        for rep_i in range(o.reps):
            for name, mode in self.REFLECTORS:
                s = self.testpmd_memif_trial(c, wd, mode, streams, None)
                trials.setdefault(name, []).append(s)
                self.say(trial_line(f"#{rep_i + 1} {name}", s))
            for n in counts:
                s = self.rtpx_memif_trial(c, wd, f"rtpx-{n}", n, None)
                trials.setdefault(f"rtpx {n}", []).append(s)
                self.say(trial_line(f"#{rep_i + 1} rtpx {n:,} sessions", s))
                if s["setup_failed"]:
                    self.notes.append(f"rtpx {n}: {s['setup_failed']} session set-ups failed")
        med = {k: rep.median_summary(v) for k, v in trials.items()}
        self._trials = trials
        self.judge(med, counts)
        return {"sessions": counts, "reflector_streams": streams,
                "results": {k: {"median": med[k], "trials": v} for k, v in trials.items()}}

    def judge(self, med, counts):
        o = self.opt
        tp5 = med["testpmd-5tswap"]["received_pps"]
        tpio = med["testpmd-io"]["received_pps"]
        # A ceiling is what the generator can do: the best trial (a low one is another
        # process on its CPU), unlike the relays' medians.
        ceil = med[self.REFLECTORS[2][0]]["received_pps_max"]
        loop = max(tp5 or 0, tpio or 0)
        for n in counts:
            r = med[f"rtpx {n}"]["received_pps"]
            self.checks.add(f"memif pass-through ≥ 80% of testpmd-5tswap ({n:,} sessions)",
                            f"{rep.ratio_words('rtpx', r, 'testpmd-5tswap', tp5)} "
                            f"({rep.mpps(r)} vs {rep.mpps(tp5)})",
                            bool(r and tp5 and r >= 0.8 * tp5))
            if loop >= 10e6:
                self.checks.add(f"≥ 10 Mpps ({n:,} sessions)", f"rtpx {rep.mpps(r)}",
                                bool(r and r >= 10e6))
            else:
                self.checks.add(f"≥ 10 Mpps ({n:,} sessions)",
                                f"not reachable here: the link and generator top out at "
                                f"{rep.mpps(loop)} (median of the better of testpmd io/5tswap; "
                                f"generator TX alone, best trial {rep.mpps(ceil)}); rtpx "
                                f"{rep.mpps(r)} = "
                                f"{r / 10e6 * 100:.0f}% of 10 Mpps" if r else "not measured",
                                None)
            if r and loop and r >= 0.9 * loop:
                words = rep.ratio_words("rtpx", r, "the best reflector", loop)
                self.checks.note(f"rtpx {n:,}: {words} — the generator/link is the limit, "
                                 "not the relay")
        noisy = [f"{k} {rep.mpps(m['received_pps_min'])}–{rep.mpps(m['received_pps_max'])}"
                 for k, m in med.items() if k != self.REFLECTORS[2][0]
                 and m["received_pps_min"] and m["received_pps_max"] > 1.5 * m["received_pps_min"]]
        if noisy:
            self.checks.note("unsteady trials (max > 1.5x min; other processes on these CPUs): "
                             + "; ".join(noisy) + " — ratios with these are rough")
        share = gen_cpu_share([t for n in counts for t in self._trials[f"rtpx {n}"]], o.gen_cpu)
        if share:
            self.checks.note(share)
        if tp5 and ceil and tp5 >= 0.9 * ceil:
            self.checks.note("testpmd-5tswap is at the generator's TX ceiling: the baseline is "
                             "generator-limited")
        self.checks.note(f"{rep.ratio_words('testpmd-5tswap', tp5, 'generator TX ceiling', ceil)};"
                         f" {rep.ratio_words('testpmd-io', tpio, 'generator TX ceiling', ceil)}")

    def plot(self, result, path, subtitle):
        res = result["results"]
        rtpx = [(n, res[f"rtpx {n}"]["median"]["received_pps"],
                 res[f"rtpx {n}"]["median"]["received_pps_min"],
                 res[f"rtpx {n}"]["median"]["received_pps_max"]) for n in result["sessions"]]
        lines = {name: res[name]["median"]["received_pps"] for name, _ in self.REFLECTORS[:2]}
        gen = self.REFLECTORS[2][0]
        lines[f"{gen}, best trial"] = res[gen]["median"]["received_pps_max"]
        rep.plot_throughput_vs_sessions(path, rtpx, lines, subtitle)

    def table(self, result):
        rows = []
        for name, r in result["results"].items():
            m = r["median"]
            rows.append([name, f"{r['trials'][0]['flows']:,}", rep.mpps(m["received_pps"]),
                         f"{rep.mpps(m['received_pps_min'])}–{rep.mpps(m['received_pps_max'])}",
                         rep.num(m["loss_pct"], "{:.4f}"), rep.num(m["latency_us"]["p50"]),
                         rep.num(m["latency_us"]["p99"]), m["trials"]])
        return (["memif, max rate", "flows", "median rx", "range", "loss %", "p50 µs", "p99 µs",
                 "trials"], rows)


# --- no-drop ----------------------------------------------------------------------------------

class NoDrop(Scenario):
    name = "no-drop"

    def search(self, c, wd) -> dict:
        o = self.opt
        n = min(o.nodrop_sessions, self.rtpx_capacity())
        dur = o.duration
        probes = []

        def probe(rate, retry=0):
            s = self.rtpx_memif_trial(c, wd, f"nodrop-{int(rate or 0)}", n, rate, dur)
            offered_ok = not rate or s["tx_achieved_pps"] >= 0.98 * rate
            passed = bool(rate) and offered_ok and s["loss_pct"] <= LOSS_THRESHOLD_PCT \
                and s["received"] > 0
            p = {"rate_pps": rate or s["tx_achieved_pps"], "max_rate": not rate,
                 "passed": passed, "retry": retry, "generator_short": not offered_ok, **s}
            probes.append(p)
            drops = s["rtpxd"].get("drops")
            self.say(f"  probe {len(probes)}: offered {rep.mpps(p['rate_pps'])}"
                     f"{' (max)' if not rate else ''}{' (again)' if retry else ''} → rx "
                     f"{rep.mpps(s['received_pps'])}, loss {s['loss_pct']:.5f}% "
                     f"{'PASS' if passed else 'fail'}"
                     f"{'  rtpxd drops ' + str(drops) if drops else ''}"
                     f"{' (generator could not offer the rate)' if not offered_ok else ''}")
            # On a shared machine one scheduling stall of the generator fails a probe: a
            # failed probe is run once more (--nodrop-retries) and passes if that one does.
            if rate and not passed and retry < o.nodrop_retries:
                return probe(rate, retry + 1)
            return p

        prior = self.shared.get("relay-max")
        hi = None
        if prior and f"rtpx {n}" in prior["results"]:
            hi = prior["results"][f"rtpx {n}"]["median"]["tx_achieved_pps"] * 1.1
            self.say(f"upper bound from this run's relay-max: {rep.mpps(hi)}")
        else:
            hi = probe(None)["tx_achieved_pps"]
        lo = 0.0
        iters = o.nodrop_iterations
        self.say(f"binary search, {n:,} sessions, loss ≤ {LOSS_THRESHOLD_PCT}%, {iters} probes "
                 f"of {dur} s between 0 and {rep.mpps(hi)}")
        for _ in range(iters):
            mid = (lo + hi) / 2
            if probe(mid)["passed"]:
                lo = mid
            else:
                hi = mid
        best = max((p["rate_pps"] for p in probes if p["passed"]), default=0.0)
        return {"sessions": n, "nodrop_pps": best, "upper_pps": hi, "probes": probes}

    def body(self, c, wd):
        r = self.search(c, wd)
        best = r["nodrop_pps"]
        if best:
            self.checks.add("no-drop rate (loss ≤ 0.001 %)",
                            f"rtpx {rep.mpps(best)} with {r['sessions']:,} sessions (search "
                            f"bounded to ±{rep.mpps(r['upper_pps'] - best)})", None)
        else:
            self.checks.add("no-drop rate (loss ≤ 0.001 %)",
                            "no probed rate passed: rtpxd lost more than 0.001 % at every rate "
                            f"down to {rep.mpps(min(p['rate_pps'] for p in r['probes']))}", None)
        drops: dict[str, int] = {}
        for p in r["probes"]:
            if not p["passed"]:
                for k, v in p.get("rtpxd", {}).get("drops", {}).items():
                    drops[k] = drops.get(k, 0) + v
        lost = sum(max(0, p["sent"] - p["received"]) for p in r["probes"] if not p["passed"])
        if lost:
            where = ", ".join(f"{k} {v:,}" for k, v in sorted(drops.items())) or "none"
            self.checks.note(
                f"failed probes lost {lost:,} packets; rtpxd's own drop counters: {where}. "
                "tx_full = rtpxd's TX ring towards the generator was full: the generator "
                "(sharing its CPU) did not drain it in time — a stall on the generator side; "
                "flow_no_route = the generator's MAC not resolved yet")
        share = gen_cpu_share(r["probes"], self.opt.gen_cpu)
        if share:
            self.checks.note(share)
        prior = self.shared.get("relay-max")
        if prior and best:
            mx = prior["results"].get(f"rtpx {r['sessions']}", {}).get("median", {})
            if mx.get("received_pps"):
                self.checks.note(rep.ratio_words("no-drop", best, "max-rate throughput",
                                                 mx["received_pps"]))
        self.shared["nodrop-search"] = r
        return {"results": r}

    def plot(self, result, path, subtitle):
        r = result["results"]
        rep.plot_nodrop(path, r["probes"], LOSS_THRESHOLD_PCT, r["nodrop_pps"], subtitle)

    def table(self, result):
        r = result["results"]
        rows = [[i + 1, rep.mpps(p["rate_pps"]) + (" (max)" if p["max_rate"] else "")
                 + (" (again)" if p.get("retry") else ""),
                 rep.mpps(p["received_pps"]), f"{p['loss_pct']:.5f}",
                 "pass" if p["passed"] else "fail"] for i, p in enumerate(r["probes"])]
        rows.append(["no-drop", rep.mpps(r["nodrop_pps"]), "", "", ""])
        return ["probe", "offered", "received", "loss %", "verdict"], rows


# --- latency ------------------------------------------------------------------------------------

class Latency(Scenario):
    name = "latency"

    def body(self, c, wd):
        o = self.opt
        nd = self.shared.get("nodrop-search")
        if nd is None:
            self.say("no no-drop result in this run: measuring it first")
            sub = NoDrop(o, self.out, self.shared)
            sub.name = "latency/no-drop"
            nd = sub.search(c, wd)
            self.shared["nodrop-search"] = nd
        else:
            self.say(f"reusing this run's no-drop rate {rep.mpps(nd['nodrop_pps'])}")
        base = nd["nodrop_pps"]
        n = nd["sessions"]
        if not base:
            base = min(p["rate_pps"] for p in nd["probes"])
            msg = (f"no rate passed the no-drop search; loads are taken from the lowest probe, "
                   f"{rep.mpps(base)}")
            self.say("NOTE: " + msg)
            self.notes.append(msg)
        series: dict[str, dict[int, list[dict]]] = {"rtpx": {}, "testpmd-5tswap": {}}
        baseline_loads = o.loads if not o.smoke else [o.loads[len(o.loads) // 2]]
        for rep_i in range(o.reps):
            for load in o.loads:
                rate = max(1.0, base * load / 100)
                s = self.rtpx_memif_trial(c, wd, f"lat-{load}", n, rate)
                series["rtpx"].setdefault(load, []).append(s)
                self.say(trial_line(f"#{rep_i + 1} rtpx {load}% ({rep.mpps(rate)})", s))
                if load in baseline_loads:
                    s = self.testpmd_memif_trial(c, wd, "5tswap", n, rate)
                    series["testpmd-5tswap"].setdefault(load, []).append(s)
                    self.say(trial_line(f"#{rep_i + 1} testpmd-5tswap {load}%", s))
        out = {}
        for name, by_load in series.items():
            out[name] = {str(load): {"rate_pps": base * load / 100,
                                     "median": rep.median_summary(v), "trials": v}
                         for load, v in by_load.items()}
        mid = out["rtpx"].get("50")
        if mid:
            lat = mid["median"]["latency_us"]
            self.checks.add("latency at 50 % load, p50 ≤ 10 µs",
                            f"rtpx p50 {lat['p50']:.1f} µs", lat["p50"] <= 10)
            self.checks.add("latency at 50 % load, p99 ≤ 50 µs",
                            f"rtpx p99 {lat['p99']:.1f} µs", lat["p99"] <= 50)
            sleeps = rep.median([t.get("rtpxd", {}).get("counters", {}).get("idle_sleeps")
                                 for t in mid["trials"]])
            if sleeps:
                self.checks.note(f"rtpxd's worker went to sleep {sleeps:,.0f} times per trial at "
                                 f"50 % load (idle back-off, [dataplane] idle_max_sleep_us): a "
                                 f"packet that arrives while it sleeps waits for the wake-up")
            tp = out["testpmd-5tswap"].get("50")
            if tp:
                tl = tp["median"]["latency_us"]
                self.checks.note(f"same rate through testpmd-5tswap (link + generator alone): "
                                 f"p50 {tl['p50']:.1f} µs, p99 {tl['p99']:.1f} µs; rtpx minus "
                                 f"testpmd: p50 {lat['p50'] - tl['p50']:+.1f} µs, p99 "
                                 f"{lat['p99'] - tl['p99']:+.1f} µs")
        return {"nodrop_pps": base, "sessions": n, "results": out}

    def plot(self, result, path, subtitle):
        series = {name: [(int(load), v["median"]["latency_us"]) for load, v in sorted(
            by.items(), key=lambda kv: int(kv[0]))] for name, by in result["results"].items()}
        rep.plot_latency(path, series, subtitle)

    def table(self, result):
        rows = []
        for name, by in result["results"].items():
            for load, v in sorted(by.items(), key=lambda kv: int(kv[0])):
                m = v["median"]
                lat = m["latency_us"]
                rows.append([name, f"{load}%", rep.mpps(v["rate_pps"]), f"{lat['p50']:.1f}",
                             f"{lat['p99']:.1f}", f"{lat['p99_9']:.1f}", f"{lat['max']:.1f}",
                             f"{m['loss_pct']:.4f}", m["trials"]])
        return (["memif", "load", "rate", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "loss %",
                 "trials"], rows)


# --- setup-rate -------------------------------------------------------------------------------

class SetupRate(Scenario):
    name = "setup-rate"

    def body(self, c, wd):
        o = self.opt
        v = env.VethNs(c, f"s{env.free_port() % 1000}")
        v.set_relay_address(f"{VETH_RTPE_IP}/24")
        calls = o.setup_calls
        self.say(f"{calls:,} offer+answer+delete cycles, {o.setup_concurrency} client threads "
                 f"(session_rate on CPU {o.gen_cpu}); each daemon alone on CPU {o.relay_cpu} "
                 f"(rtpxd main lcore, worker and gRPC threads; rtpengine with 1 thread); both "
                 f"reached over loopback in namespace {v.ns}")
        trials: dict[str, list[dict]] = {"rtpx (gRPC)": [], "rtpx (NG)": [],
                                         "rtpengine (NG)": []}
        for rep_i in range(o.reps):
            # rtpx, over gRPC and over NG (the same requests rtpengine gets)
            for kind in ("gRPC", "NG"):
                sock = wd.path / f"setup-{rep_i}-{kind}.sock"
                d = env.Rtpxd(c, wd, device=f"net_memif0,role=server,socket={sock}",
                              ipv4=[VETH_RTPX_IP], main_cpu=o.relay_cpu,
                              worker_cpu=o.relay_cpu, busy_poll=False, netns=v.ns)
                target = ["--server", d.grpc] if kind == "gRPC" else ["--ng", d.ng]
                try:
                    r = env.run_session_rate(c, wd, f"rtpx-{kind}",
                                             [*target, "--calls", str(calls), "--concurrency",
                                              str(o.setup_concurrency), "--prefix",
                                              f"b{rep_i}"], cpu=o.gen_cpu, netns=v.ns)
                finally:
                    c.pop(d.proc.stop)
                trials[f"rtpx ({kind})"].append(r)
                self.say(f"  #{rep_i + 1} rtpx {kind:<4} {r['cycles_per_s']:>8,.0f} cycles/s, "
                         f"errors {r['errors']}, offer p50 {r['offer_p50_ms']:.2f} ms")
            # rtpengine
            rtpe, port = self.start_rtpengine(c, wd, v.ns, port_min=20000, log_level=4)
            try:
                r = env.run_session_rate(c, wd, "rtpengine", ["--ng", f"127.0.0.1:{port}",
                                                              "--calls", str(calls),
                                                              "--concurrency",
                                                              str(o.setup_concurrency),
                                                              "--prefix", f"b{rep_i}"],
                                         cpu=o.gen_cpu, netns=v.ns)
            finally:
                c.pop(rtpe.stop)
            trials["rtpengine (NG)"].append(r)
            self.say(f"  #{rep_i + 1} rtpengine {r['cycles_per_s']:>8,.0f} cycles/s, errors "
                     f"{r['errors']}, offer p50 {r['offer_p50_ms']:.2f} ms")
        med = {}
        for k, ts in trials.items():
            med[k] = {f: rep.median([t[f] for t in ts]) for f in
                      ("cycles_per_s", "offer_p50_ms", "offer_p99_ms", "answer_p50_ms",
                       "answer_p99_ms", "delete_p50_ms", "delete_p99_ms")}
            med[k]["errors"] = sum(t["errors"] for t in ts)
            if med[k]["errors"]:
                first = next(t.get("first_error", "") for t in ts if t["errors"])
                self.notes.append(f"{k}: {med[k]['errors']} errors; first: {first}")
        re = med["rtpengine (NG)"]["cycles_per_s"]
        for k in ("rtpx (gRPC)", "rtpx (NG)"):
            rx = med[k]["cycles_per_s"]
            self.checks.add(f"set-up ≥ 20,000 offer+answer+delete/s, {k}", f"{rx:,.0f}/s",
                            bool(rx and rx >= 20000))
            self.checks.add(f"set-up ahead of rtpengine, {k}",
                            rep.ratio_words(k, rx, "rtpengine", re), bool(rx and re and rx > re))
        return {"calls": calls, "concurrency": o.setup_concurrency,
                "results": {k: {"median": med[k], "trials": trials[k]} for k in trials}}

    def plot(self, result, path, subtitle):
        bars = [(k, v["median"]["cycles_per_s"], [t["cycles_per_s"] for t in v["trials"]])
                for k, v in result["results"].items()]
        rep.plot_bars(path, bars, "offer+answer+delete per second", "session set-up rate "
                      "(1 daemon core, same client)", subtitle)

    def table(self, result):
        rows = []
        for k, v in result["results"].items():
            m = v["median"]
            rows.append([k, f"{m['cycles_per_s']:,.0f}", f"{m['offer_p50_ms']:.2f}",
                         f"{m['answer_p50_ms']:.2f}", f"{m['delete_p50_ms']:.2f}",
                         f"{m['offer_p99_ms']:.2f}", m["errors"], len(v["trials"])])
        return (["set-up", "cycles/s", "offer p50 ms", "answer p50 ms", "delete p50 ms",
                 "offer p99 ms", "errors", "trials"], rows)


# --- veth -------------------------------------------------------------------------------------

class Veth(Scenario):
    name = "veth"

    def body(self, c, wd):
        o = self.opt
        v = env.VethNs(c, f"v{env.free_port() % 1000}")
        n = o.veth_sessions
        gen_vdev = f"net_af_packet1,iface={v.gen_if}"
        self.say(f"veth pair {v.gen_if}–{v.relay_if} in namespace {v.ns}; rtpx-gen on "
                 f"net_af_packet ({v.gen_if}); {n:,} sessions, max rate, {o.reps} alternating "
                 f"trial(s) of {o.duration} s")
        trials: dict[str, list[dict]] = {}

        def gen(label, args, rate=None):
            return rep.gen_summary(env.run_gen(
                c, wd, label, ["--vdev", gen_vdev, "--ip", VETH_GEN_IP, "--streams", str(n),
                               *args, *self.gen_traffic_args(rate)], cpu=o.gen_cpu,
                netns=v.ns))

        def rtpx_run(rate):
            # rtpxd on net_af_packet, the relay end without a kernel address
            v.set_relay_address(None)
            d = env.Rtpxd(c, wd, device=f"net_af_packet0,iface={v.relay_if},qpairs=1",
                          ipv4=[VETH_RTPX_IP], main_cpu=o.gen_cpu, worker_cpu=o.relay_cpu,
                          netns=v.ns)
            try:
                s = gen("veth-rtpx", ["--setup", "rtpx", "--grpc", d.grpc, "--keep"], rate)
                s["rtpxd"] = d.stats()
                return s
            finally:
                c.pop(d.proc.stop)

        def rtpe_run(rate):
            # rtpengine, userspace, on the kernel address of the same veth end
            v.set_relay_address(f"{VETH_RTPE_IP}/24")
            rtpe, port = self.start_rtpengine(c, wd, v.ns, port_min=10000, log_level=3)
            try:
                return gen("veth-rtpengine", ["--setup", "ng", "--ng", f"127.0.0.1:{port}",
                                              "--keep"], rate)
            finally:
                c.pop(rtpe.stop)

        for rep_i in range(o.reps):
            s = rtpx_run(None)
            trials.setdefault("rtpx (af_packet)", []).append(s)
            self.say(trial_line(f"#{rep_i + 1} rtpx af_packet", s))
            s = rtpe_run(None)
            trials.setdefault("rtpengine (userspace)", []).append(s)
            self.say(trial_line(f"#{rep_i + 1} rtpengine", s))
            # the link's own ceiling: testpmd 5tswap on the relay end
            v.set_relay_address(None)
            tp = env.Testpmd(c, wd, vdev=f"net_af_packet0,iface={v.relay_if}", mode="5tswap",
                             main_cpu=o.gen_cpu, fwd_cpu=o.relay_cpu, netns=v.ns)
            try:
                time.sleep(1.0 if not o.smoke else 0.5)  # af_packet needs no peer; let it start
                mac = env.sh("ip", "-n", v.ns, "-br", "link", "show", v.relay_if).stdout.split()[2]
                s = gen("veth-testpmd", ["--setup", "none", "--dst", f"{VETH_RTPX_IP}:30000",
                                         "--dst-mac", mac])
            finally:
                tp.stop()
            trials.setdefault("testpmd-5tswap (af_packet)", []).append(s)
            self.say(trial_line(f"#{rep_i + 1} testpmd-5tswap", s))
        med = {k: rep.median_summary(t) for k, t in trials.items()}
        rx = med["rtpx (af_packet)"]["received_pps"]
        re = med["rtpengine (userspace)"]["received_pps"]
        tp = med["testpmd-5tswap (af_packet)"]["received_pps"]
        gen_tx = max(m["tx_achieved_pps"] or 0 for m in med.values())

        # At the generator's max rate rtpengine sheds load (its "UDP receive queue exceeded":
        # it discards whole streams), so the max-rate figure understates what it forwards.
        # The comparison that counts: the highest offered rate each relay forwards with loss
        # <= VETH_LOSS_PCT, found by the same binary search for both, probes alternating.
        hi = gen_tx
        self.say(f"loss-bounded rate (loss ≤ {VETH_LOSS_PCT}%): binary search, "
                 f"{o.veth_iterations} probes of {o.duration} s per relay, 0–{rep.mpps(hi)}")
        bounds = {"rtpx": [0.0, hi], "rtpengine": [0.0, hi]}
        probes: dict[str, list[dict]] = {"rtpx": [], "rtpengine": []}
        for _ in range(o.veth_iterations):
            for who in ("rtpx", "rtpengine"):
                lo_, hi_ = bounds[who]
                rate = (lo_ + hi_) / 2
                s = rtpx_run(rate) if who == "rtpx" else rtpe_run(rate)
                ok = (s["tx_achieved_pps"] >= 0.98 * rate and s["received"] > 0
                      and s["loss_pct"] <= VETH_LOSS_PCT)
                probes[who].append({"rate_pps": rate, "passed": ok, **s})
                bounds[who] = [rate, hi_] if ok else [lo_, rate]
                note = ""
                if s["tx_achieved_pps"] < 0.98 * rate:
                    note = f" (the generator offered only {rep.mpps(s['tx_achieved_pps'])})"
                elif who == "rtpx" and not ok:
                    note = rtpx_loss_place(s)
                self.say(f"  {who:<9} offered {rep.mpps(rate):>10} → rx "
                         f"{rep.mpps(s['received_pps']):>10}, loss {s['loss_pct']:.3f}% "
                         f"{'PASS' if ok else 'fail'}{note}")
        best = {w: max((p["rate_pps"] for p in ps if p["passed"]), default=0.0)
                for w, ps in probes.items()}
        self.checks.add(f"veth ≥ 5x rtpengine per core (1 core each; highest rate with loss ≤ "
                        f"{VETH_LOSS_PCT}%)",
                        f"{rep.ratio_words('rtpx', best['rtpx'], 'rtpengine', best['rtpengine'])}"
                        f" ({rep.mpps(best['rtpx'])} vs {rep.mpps(best['rtpengine'])})",
                        bool(best["rtpx"] and best["rtpengine"]
                             and best["rtpx"] >= 5 * best["rtpengine"]))
        self.checks.note(f"at the generator's max rate ({rep.mpps(gen_tx)} offered): "
                         f"{rep.ratio_words('rtpx', rx, 'rtpengine', re)} ({rep.mpps(rx)} vs "
                         f"{rep.mpps(re)} received; rtpengine sheds load when its socket queues "
                         f"overflow)")
        self.checks.note(rep.ratio_words("rtpx", rx, "testpmd-5tswap on the same veth", tp)
                         + " at max rate")
        failed = [p for p in probes["rtpx"] if not p["passed"]
                  and p["tx_achieved_pps"] >= 0.98 * p["rate_pps"] and p.get("rtpxd")]
        if failed:
            sent = sum(p["sent_total"] for p in failed)
            rxd = sum(p["rtpxd"].get("counters", {}).get("rx_packets", 0) for p in failed)
            drops = sum(sum(p["rtpxd"].get("drops", {}).values()) for p in failed)
            sleeps = sum(p["rtpxd"].get("counters", {}).get("idle_sleeps", 0) for p in failed)
            self.checks.note(f"rtpx's failed probes: rtpxd's port received {rxd:,} of the "
                             f"{sent:,} packets sent ({100 * (sent - rxd) / sent:.1f}% lost "
                             f"before its RX: the kernel's af_packet ring overflowed) and "
                             f"dropped {drops:,} itself; "
                             + (f"its worker also went to sleep {sleeps:,} times (idle back-off), "
                                f"likely what let the ring fill" if sleeps else
                                "its worker never slept (busy-poll): the kernel side of the "
                                "veth and af_packet copy are the limit"))
        if best["rtpx"] and best["rtpx"] >= 0.95 * bounds["rtpx"][1] and \
                bounds["rtpx"][1] >= 0.9 * hi:
            self.checks.note("rtpx passed up to the generator's max rate: the generator, not "
                             "the relay, is the limit")
        return {"sessions": n, "loss_threshold_pct": VETH_LOSS_PCT, "search": {
                    w: {"best_pps": best[w], "probes": probes[w]} for w in probes},
                "results": {k: {"median": med[k], "trials": trials[k]} for k in trials}}

    def plot(self, result, path, subtitle):
        bars = [(f"{k}\nmax rate", v["median"]["received_pps"],
                 [t["received_pps"] for t in v["trials"]])
                for k, v in result["results"].items()]
        bars += [(f"{w}\nloss ≤ {result['loss_threshold_pct']}%", v["best_pps"], [])
                 for w, v in result["search"].items()]
        rep.plot_bars(path, bars, "received kpps (median; dots: trials)",
                      f"kernel veth path, {result['sessions']:,} sessions, 1 relay core",
                      subtitle, scale=1e3)

    def table(self, result):
        rows = []
        for k, v in result["results"].items():
            m = v["median"]
            rows.append([f"{k}, max rate", rep.mpps(m["received_pps"]),
                         rep.mpps(m["tx_achieved_pps"]), f"{m['loss_pct']:.2f}",
                         f"{m['latency_us']['p50']:.1f}", f"{m['latency_us']['p99']:.1f}",
                         m["trials"]])
        for w, v in result["search"].items():
            ok = [p for p in v["probes"] if p["passed"]]
            b = max(ok, key=lambda p: p["rate_pps"]) if ok else None
            rows.append([f"{w}, loss ≤ {result['loss_threshold_pct']}%", rep.mpps(v["best_pps"]),
                         rep.mpps(v["best_pps"]), f"{b['loss_pct']:.2f}" if b else "—",
                         f"{b['latency_us']['p50']:.1f}" if b else "—",
                         f"{b['latency_us']['p99']:.1f}" if b else "—",
                         f"{len(v['probes'])} probes"])
        return (["veth (af_packet gen)", "median rx", "offered", "loss %", "p50 µs", "p99 µs",
                 "trials"], rows)


SCENARIOS = {c.name: c for c in (RelayMax, NoDrop, Latency, SetupRate, Veth)}
ORDER = ["relay-max", "no-drop", "latency", "setup-rate", "veth"]
