"""Starts a real rtpxd for a test: its own network namespace and veth pair, its own gRPC and
HTTP ports, its own EAL file prefix, so tests never touch the host's routes, nor an rtpxd that
`tools/run` may have running."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("RTPX_BUILD", ROOT / "build"))
RTPXD = BUILD / "controlplane" / "rtpxd"
RTPXCTL = BUILD / "tools" / "rtpxctl"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rtpxd:
    """One rtpxd on net_af_packet over a veth pair into namespace `ns`."""

    RTPX_V4 = "192.0.2.2"
    PEER_V4 = "192.0.2.1"
    RTPX_V6 = "2001:db8::2"
    PEER_V6 = "2001:db8::1"

    def __init__(self, tag, workers=1, extra_toml="", ng_listen=None, ns=None, rtpx_v4=None,
                 peer_v4=None, rtpx_v6=None, peer_v6=None):
        self.tag = tag
        # A namespace of its own, or `ns`: another rtpxd's, which this one then shares (a
        # veth of its own into it, so its addresses must be another subnet's) and leaves
        # in place at cleanup().
        self.ns = ns or f"rtpxt-{tag}"
        self.own_ns = ns is None
        self.rtpx_v4, self.peer_v4 = rtpx_v4 or self.RTPX_V4, peer_v4 or self.PEER_V4
        self.rtpx_v6, self.peer_v6 = rtpx_v6 or self.RTPX_V6, peer_v6 or self.PEER_V6
        self.host_if = f"rtx{tag}"
        self.peer_if = f"rtx{tag}p"
        self.grpc_port = free_port()
        self.http_port = free_port()
        # rtpengine's NG protocol (UDP): a free loopback port unless the test picks an address.
        self.ng_listen = ng_listen or f"127.0.0.1:{free_port()}"
        self.workers = workers
        self.log_path = Path(f"/tmp/rtpxd-test-{tag}.log")
        cpus = os.cpu_count() or 1
        worker_cpus = [min(i + 1, cpus - 1) for i in range(workers)]
        self.config = f"""
[eal]
main_cpu = 0
worker_cpus = {worker_cpus}
file_prefix = "rtpxt{tag}"
memory_mb = 256

[dataplane]
mbufs_per_socket = 8191

[[interface]]
name = "media0"
device = "net_af_packet{tag},iface={self.host_if},qpairs={workers}"
ipv4 = "{self.rtpx_v4}/24"
ipv6 = "{self.rtpx_v6}/64"
gateway4 = "{self.peer_v4}"
gateway6 = "{self.peer_v6}"

[dev_netns]
enabled = true
namespace = "{self.ns}"
host_ifname = "{self.host_if}"
peer_ifname = "{self.peer_if}"
peer_ipv4 = "{self.peer_v4}/24"
peer_ipv6 = "{self.peer_v6}/64"

[grpc]
listen = "127.0.0.1:{self.grpc_port}"

[http]
listen = "127.0.0.1:{self.http_port}"

[ng]
listen = "{self.ng_listen}"
{extra_toml}
"""
        self.config_path = Path(f"/tmp/rtpxd-test-{tag}.toml")
        self.proc = None

    # --- lifecycle ---
    @contextlib.contextmanager
    def running(self):
        """Starts rtpxd and yields it; afterwards checks that it shut down cleanly, and removes
        its namespace and links whatever happened."""
        try:
            self.start()
            yield self
            rc = self.stop()
            assert rc == 0, f"rtpxd exited with {rc}:\n{self.read_log()}"
        finally:
            if self.proc and self.proc.poll() is None:
                self.stop()
            self.cleanup()

    def start(self, timeout=30):
        self.config_path.write_text(self.config)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(RTPXD), "--config", str(self.config_path)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rtpxd exited with {self.proc.returncode}:\n{self.read_log()}")
            if self.http_status("/readyz") == 200:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"rtpxd not ready after {timeout}s:\n{self.read_log()}")

    def stop(self, timeout=20):
        """SIGTERM; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        if self.own_ns:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)

    def read_log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    # --- probes ---
    def http_status(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def http_get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return r.read().decode()

    def rtpxctl(self, *args, check=True, input=None):
        # Bytes in and out: SDP is CRLF text, and text mode would translate the line endings.
        r = subprocess.run([str(RTPXCTL), "--server", f"127.0.0.1:{self.grpc_port}", *args],
                           capture_output=True, check=False, timeout=30,
                           input=input.encode() if input is not None else None)
        r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
        if check:
            r.check_returncode()
        return r

    def stats(self):
        return json.loads(self.rtpxctl("stats", "--json").stdout)

    def counter(self, name, worker=None):
        """Sum of an event or drop counter over workers (or one worker)."""
        total = 0
        for w in self.stats()["workers"]:
            if worker is not None and w["worker_id"] != worker:
                continue
            for c in w["counters"] + w["drops"]:
                if c["name"] == name:
                    total += int(c["value"])
        return total

    def in_ns(self, *cmd, check=True, timeout=30, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], capture_output=True,
                              text=True, check=check, timeout=timeout, **kw)

    def peer_mac(self):
        out = self.in_ns("cat", f"/sys/class/net/{self.peer_if}/address").stdout
        return out.strip()

    def cpu_seconds(self):
        """User + system CPU time of rtpxd so far (all threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def wait_for(self, predicate, timeout=5, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


class EventWatch:
    """`rtpxctl events --json` in the background: every session event rtpxd produces once
    start() returns (the subscription is in place when rtpxctl prints "watching events")."""

    def __init__(self, d, call_id=None):
        import threading
        args = [str(RTPXCTL), "--server", f"127.0.0.1:{d.grpc_port}", "events", "--json"]
        if call_id:
            args += ["--call-id", call_id]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.events = []
        self._cv = threading.Condition()
        self._ready = threading.Event()
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            with self._cv:
                self.events.append(json.loads(line))
                self._cv.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            if "watching events" in line:
                self._ready.set()

    def start(self, timeout=10):
        if not self._ready.wait(timeout):
            self.close()
            raise AssertionError("rtpxctl events did not subscribe")
        return self

    def wait(self, timeout=5, **match):
        """The first event whose fields equal `match` (short names: type="TIMEOUT",
        reason="NO_MEDIA" for SESSION_EVENT_TYPE_TIMEOUT / EVENT_REASON_NO_MEDIA)."""
        full = {k: ({"type": "SESSION_EVENT_TYPE_", "reason": "EVENT_REASON_"}.get(k, "") + v)
                for k, v in match.items()}
        deadline = time.time() + timeout
        with self._cv:
            while True:
                for e in self.events:
                    if all(e.get(k) == v for k, v in full.items()):
                        return e
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"no event {full} within {timeout}s; got {self.events}")
                self._cv.wait(left)

    def of(self, call_id):
        with self._cv:
            return [e for e in self.events if e.get("call_id") == call_id]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


PEER = str(Path(__file__).parent / "rtp_peer.py")


def start_peer(d, bind, to=None, **kw):
    """rtp_peer.py in `d`'s namespace, bound to `bind`, sending to `to`; options as keywords
    (count=3 → --count 3). Its JSON report comes from peer_result()."""
    args = [sys.executable, PEER, "--bind", bind]
    if to:
        args += ["--to", to]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return subprocess.Popen(["ip", "netns", "exec", d.ns, *args], stdout=subprocess.PIPE,
                            text=True)


def peer_result(p, timeout=60):
    out, _ = p.communicate(timeout=timeout)
    return json.loads(out)
