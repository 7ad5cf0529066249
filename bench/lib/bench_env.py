"""Processes, namespaces and links for bench/run (Python stdlib only).

Everything a scenario starts is registered with a ``Cleanup`` stack and undone in reverse order
when the scenario ends, fails or is interrupted (Ctrl-C, SIGTERM): processes get SIGTERM (then
SIGKILL), namespaces and veths are deleted, memif socket directories and EAL runtime
directories removed. Every child runs in a session of its own, so a Ctrl-C on the terminal
reaches only bench/run, which then stops the children in order (the generator first, so it
still deletes its sessions).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("RTPX_BUILD", ROOT / "build"))
RTPXD = BUILD / "controlplane" / "rtpxd"
RTPX_GEN = BUILD / "bench" / "rtpx-gen"
SESSION_RATE = BUILD / "bench" / "session_rate"
TESTPMD = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"

# Sessions one IPv4 address holds on either side: a call takes an RTP/RTCP port pair per side,
# so 4 ports of 10000-65535 (rtpxd) / 2 endpoints of 10000-65534 step 2 (rtpx-gen).
PORT_MIN, PORT_MAX = 10000, 65535
SESSIONS_PER_IP = (PORT_MAX - PORT_MIN + 1) // 4  # 13,884


class BenchError(RuntimeError):
    pass


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that finally blocks clean up."""


def install_signal_handlers() -> None:
    def on_term(signum, _frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    # Even when started in the background of a script (SIGINT ignored there by default).
    signal.signal(signal.SIGINT, signal.default_int_handler)


def log(msg: str = "") -> None:
    print(msg, flush=True)


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports (all bound at once: two calls in a row may return the same
    port, and gRPC binds with SO_REUSEPORT, so a clash would not even fail)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def netns_prefix(ns: str | None) -> list[str]:
    return ["ip", "netns", "exec", ns] if ns else []


class Proc:
    """A child process in its own session, output to a log file."""

    def __init__(self, name: str, cmd: list[str], log_path: Path):
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self._log = open(log_path, "ab")
        self._log.write(f"$ {shlex.join(cmd)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL (to its process group: it is in a session of its own)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""


class Cleanup:
    """A stack of undo actions, run in reverse order; each failure is reported, not raised."""

    def __init__(self):
        self._actions: list[tuple[str, callable]] = []

    def push(self, what: str, fn) -> None:
        self._actions.append((what, fn))

    def pop(self, fn) -> None:
        """Runs and forgets one registered action now (e.g. stop a process before the next)."""
        for i in range(len(self._actions) - 1, -1, -1):
            if self._actions[i][1] == fn:
                what, f = self._actions.pop(i)
                self._run(what, f)
                return

    @staticmethod
    def _run(what, fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 — cleanup must go on
            log(f"  cleanup: {what}: {e}")

    def run(self) -> None:
        # Ctrl-C again during clean-up must not leave namespaces behind.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while self._actions:
                what, fn = self._actions.pop()
                self._run(what, fn)
        finally:
            signal.signal(signal.SIGINT, old)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.run()


class Workdir:
    """A temporary directory for sockets, configs and logs of one scenario (kept on failure)."""

    def __init__(self, cleanup: Cleanup, keep: bool = False):
        self.path = Path(tempfile.mkdtemp(prefix="rtpx-bench-"))
        self.ok = False
        self.keep = keep
        cleanup.push(f"remove {self.path}", self._remove)
        self._n = 0

    def _remove(self):
        if self.ok and not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            log(f"  logs kept in {self.path}")

    def file(self, stem: str, suffix: str) -> Path:
        self._n += 1
        return self.path / f"{self._n:03d}-{stem}{suffix}"


def start(cleanup: Cleanup, name: str, cmd: list[str], log_path: Path) -> Proc:
    p = Proc(name, cmd, log_path)
    cleanup.push(f"stop {name} (pid {p.pid})", p.stop)
    return p


def eal_dir_cleanup(cleanup: Cleanup, prefix: str) -> None:
    cleanup.push(f"remove EAL runtime dir {prefix}",
                 lambda: shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True))


def wait_for(pred, timeout: float, what: str, proc: Proc | None = None, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise BenchError(f"{proc.name} exited with {proc.proc.returncode} while waiting for "
                             f"{what}; log {proc.log_path}:\n{proc.tail()}")
        v = pred()
        if v:
            return v
        time.sleep(step)
    tail = f"; log {proc.log_path}:\n{proc.tail()}" if proc else ""
    raise BenchError(f"timed out after {timeout} s waiting for {what}{tail}")


# --- links --------------------------------------------------------------------------------------

class VethNs:
    """Namespace NS with a veth pair in it: GEN end (rtpx-gen's af_packet port, no kernel
    address) and RELAY end (rtpxd's af_packet port, or rtpengine's kernel address)."""

    def __init__(self, cleanup: Cleanup, tag: str):
        self.ns = f"rtpxb-{tag}"
        self.gen_if = f"rxb{tag}g"
        self.relay_if = f"rxb{tag}r"
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "netns", "add", self.ns)
        cleanup.push(f"delete namespace {self.ns}", lambda: sh("ip", "netns", "del", self.ns,
                                                                check=False))
        n = ["-n", self.ns]
        sh("ip", *n, "link", "add", self.gen_if, "type", "veth", "peer", "name", self.relay_if)
        for i in (self.gen_if, self.relay_if):
            # No IPv6 on either end: no router solicitations or DAD frames in the measurement.
            sh("ip", "netns", "exec", self.ns, "sysctl", "-qw",
               f"net.ipv6.conf.{i}.disable_ipv6=1", check=False)
            sh("ip", *n, "link", "set", i, "up")
        sh("ip", *n, "link", "set", "lo", "up")

    def set_relay_address(self, cidr: str | None) -> None:
        sh("ip", "-n", self.ns, "addr", "flush", "dev", self.relay_if)
        if cidr:
            sh("ip", "-n", self.ns, "addr", "add", cidr, "dev", self.relay_if)


# --- daemons ------------------------------------------------------------------------------------

class Rtpxd:
    """rtpxd with a generated config: one interface (memif server or af_packet), its IPv4
    address list, worker on ``worker_cpu``, main lcore and control threads on ``main_cpu``."""

    def __init__(self, cleanup: Cleanup, wd: Workdir, *, device: str, ipv4: list[str],
                 main_cpu: int, worker_cpu: int, netns: str | None = None,
                 flow_capacity: int | None = None, prefix_len: int = 24,
                 busy_poll: bool = True):
        self.grpc_port, self.http_port, self.ng_port = free_ports(3)
        self.netns = netns
        self.file_prefix = f"rtpxb{os.getpid()}d{free_port()}"
        addrs = [f"{a}/{prefix_len}" for a in ipv4]
        # One address: the documented `ipv4 = "A/len"`. Several: a list, for the rtpxd that
        # holds several addresses per interface (rtpxd says so clearly if it does not).
        ipv4_toml = f'"{addrs[0]}"' if len(addrs) == 1 else json.dumps(addrs)
        cap = f"flow_capacity = {flow_capacity}\n" if flow_capacity else ""
        self.config = f"""# generated by bench/run
[eal]
main_cpu = {main_cpu}
worker_cpus = [{worker_cpu}]
memory_mb = 512
file_prefix = "{self.file_prefix}"

[dataplane]
# true: the worker has its core to itself, as in production and as testpmd's forwarding
# lcore; false where it shares a core with the control threads (setup-rate).
busy_poll = {"true" if busy_poll else "false"}

[[interface]]
name = "bench0"
device = "{device}"
ipv4 = {ipv4_toml}

[sessions]
port_min = {PORT_MIN}
port_max = {PORT_MAX}
delete_delay_s = 0
{cap}
[dev_netns]
enabled = false

[grpc]
listen = "127.0.0.1:{self.grpc_port}"

[http]
listen = "127.0.0.1:{self.http_port}"

[ng]
listen = "127.0.0.1:{self.ng_port}"
"""
        self.config_path = wd.file("rtpxd", ".toml")
        self.config_path.write_text(self.config)
        cpus = ",".join(sorted({str(main_cpu), str(worker_cpu)}))
        eal_dir_cleanup(cleanup, self.file_prefix)
        cmd = [*netns_prefix(netns), "taskset", "-c", cpus, str(RTPXD), "--config",
               str(self.config_path)]
        for attempt in range(4):
            self.proc = start(cleanup, "rtpxd", cmd, wd.file("rtpxd", ".log"))
            try:
                # /healthz, not /readyz: a memif server's link is down until the generator
                # connects.
                wait_for(self.ready, 60, "rtpxd /healthz", self.proc, step=0.2)
                return
            except BenchError:
                cleanup.pop(self.proc.stop)
                # 126: the binary is being replaced by a build in the shared tree; retry.
                if self.proc.proc.returncode != 126 or attempt == 3:
                    raise
                log("  rtpxd binary busy (a build is replacing it); retrying in 5 s")
                time.sleep(5)

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def ng(self) -> str:
        return f"127.0.0.1:{self.ng_port}"

    def thread_cpu(self) -> dict:
        """CPU seconds per thread name over rtpxd's life so far (set-up included), and the CPU
        each last ran on: which of its threads competed with the generator for its CPU."""
        pid, hz = self.proc.pid, os.sysconf("SC_CLK_TCK")
        out: dict = {}
        try:
            start = float(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            out["_lifetime_s"] = round(uptime - start / hz, 2)
            for t in Path(f"/proc/{pid}/task").iterdir():
                st = (t / "stat").read_text()
                name = st[st.index("(") + 1:st.rindex(")")]
                f = st.rsplit(")", 1)[1].split()
                cpu_s = (int(f[11]) + int(f[12])) / hz
                key = f"{name}@cpu{f[36]}"
                out[key] = round(out.get(key, 0) + cpu_s, 2)
        except (OSError, ValueError, IndexError):
            pass
        return out

    def stats(self) -> dict:
        """rtpxd's own view of a trial: its drop counters by name (non-zero ones) and packet
        counters summed over workers, so a loss can be told apart (relay drop vs elsewhere)."""
        rtpxctl = BUILD / "tools" / "rtpxctl"
        r = subprocess.run([*netns_prefix(self.netns), str(rtpxctl), "--server", self.grpc,
                            "stats", "--json"], capture_output=True, text=True, timeout=20,
                           check=False)
        out: dict = {"drops": {}, "counters": {},
                     "thread_cpu_s": {k: v for k, v in self.thread_cpu().items() if v}}
        try:
            data = json.loads(r.stdout)
        except ValueError:
            out["error"] = (r.stderr or r.stdout).strip()[:300]
            return out
        for w in data.get("workers", []):
            for c in w.get("drops", []):
                if int(c["value"]):
                    out["drops"][c["name"]] = out["drops"].get(c["name"], 0) + int(c["value"])
            for c in w.get("counters", []):
                if c["name"] in ("rx_packets", "tx_packets", "relayed", "idle_sleeps"):
                    out["counters"][c["name"]] = (out["counters"].get(c["name"], 0)
                                                  + int(c["value"]))
        return out

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        r = subprocess.run([*netns_prefix(self.netns), "curl", "-sf", "-m", "1", "-o",
                            "/dev/null", url], capture_output=True, check=False)
        return r.returncode == 0


class Testpmd:
    """dpdk-testpmd forwarding on ``fwd_cpu`` (main lcore on ``main_cpu``) on one vdev."""

    def __init__(self, cleanup: Cleanup, wd: Workdir, *, vdev: str, mode: str, main_cpu: int,
                 fwd_cpu: int, netns: str | None = None):
        self.mode = mode
        self.file_prefix = f"rtpxb{os.getpid()}t{free_port()}"
        eal_dir_cleanup(cleanup, self.file_prefix)
        # --stats-period keeps testpmd running without a terminal (it would otherwise exit on
        # EOF at "Press enter to exit"); the default mbuf pool does not fit in -m 512.
        cmd = [*netns_prefix(netns), TESTPMD, "--no-huge", "-m", "512", "--file-prefix",
               self.file_prefix, "-l", f"{main_cpu},{fwd_cpu}", "--main-lcore", str(main_cpu),
               "--no-pci", "--vdev", vdev, "--", "--no-mlockall", "--total-num-mbufs=16384",
               f"--forward-mode={mode}", "-a", "--stats-period", "1000"]
        self.proc = start(cleanup, f"testpmd-{mode}", cmd, wd.file(f"testpmd-{mode}", ".log"))
        self.cleanup = cleanup

    def stop(self):
        self.cleanup.pop(self.proc.stop)


def unix_listening(path: Path) -> bool:
    """DPDK's memif binds an abstract socket by default (socket-abstract=yes): no file, but
    /proc/net/unix lists it as @PATH."""
    want = {str(path), f"@{path}"}
    try:
        with open("/proc/net/unix") as f:
            return any(line.split()[-1] in want for line in f if len(line.split()) >= 8)
    except OSError:
        return path.exists()


def wait_socket(path: Path, proc: Proc, timeout: float = 30) -> None:
    wait_for(lambda: unix_listening(path), timeout, f"memif socket {path}", proc)


# --- clients ------------------------------------------------------------------------------------

def run_gen(cleanup: Cleanup, wd: Workdir, label: str, args: list[str], *, cpu: int,
            netns: str | None = None, timeout: float = 300) -> dict:
    """Runs rtpx-gen to completion (pinned with taskset to ``cpu``) and returns its JSON."""
    json_path = wd.file(f"gen-{label}", ".json")
    prefix = f"rtpxb{os.getpid()}g{free_port()}"
    eal_dir_cleanup(cleanup, prefix)
    cmd = [*netns_prefix(netns), "taskset", "-c", str(cpu), str(RTPX_GEN), "-l", str(cpu),
           "--file-prefix", prefix, "-q", "--json", str(json_path), *args]
    for attempt in range(4):
        p = start(cleanup, f"rtpx-gen ({label})", cmd, wd.file(f"gen-{label}", ".log"))
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"rtpx-gen ({label}) still running after {timeout} s; log "
                             f"{p.log_path}:\n{p.tail()}") from None
        finally:
            cleanup.pop(p.stop)
        if rc != 126 or attempt == 3:  # 126: the binary is being rebuilt; retry
            break
        log("  rtpx-gen binary busy (a build is replacing it); retrying in 5 s")
        time.sleep(5)
    if rc != 0 or not json_path.exists():
        raise BenchError(f"rtpx-gen ({label}) exited with {rc}; log {p.log_path}:\n{p.tail()}")
    return json.loads(json_path.read_text())


def run_session_rate(cleanup: Cleanup, wd: Workdir, label: str, args: list[str], *, cpu: int,
                     netns: str | None = None, timeout: float = 300) -> dict:
    cmd = [*netns_prefix(netns), "taskset", "-c", str(cpu), str(SESSION_RATE), *args]
    log_path = wd.file(f"session-rate-{label}", ".log")
    p = start(cleanup, f"session_rate ({label})", cmd, log_path)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"session_rate ({label}) still running after {timeout} s") from None
    finally:
        cleanup.pop(p.stop)
    lines = [ln for ln in log_path.read_text().splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"session_rate ({label}) exited with {rc} and no result:\n{p.tail()}")
    out = json.loads(lines[-1])
    out["exit_code"] = rc
    if rc != 0:
        out["first_error"] = p.tail(3).strip()
    return out
