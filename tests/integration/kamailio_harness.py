"""Kamailio + sipp + a media relay driven over NG, for tests/integration/test_kamailio.py.

Topology, all in network namespaces this harness makes (no route of the host changes):

    caller ns A  10.11.0.2 ──veth── 10.11.0.1 ┐
                                              │ router ns R: Kamailio (SIP on 10.10.0.1, its
    callee ns B  10.12.0.2 ──veth── 10.12.0.1 ┤ loopback), IPv4 forwarding on, but A↔B
                                              │ forwarding dropped (iptables), so the two
    host 10.13.0.1 ─────────veth─── 10.13.0.2 ┘ parties reach each other only through
                                                Kamailio (SIP) and the relay (media)

The relay is rtpengine running inside R (media on 10.10.0.2, NG on 127.0.0.1), or rtpx:
then R is the namespace `Rtpxd` makes (rtpx's media address 192.0.2.2 sits behind R's
192.0.2.1), and rtpx's NG socket is a kernel socket in the host namespace on 10.13.0.1, which
Kamailio reaches over the management veth. Either way Kamailio's `rtpengine_sock` and the
tests' own NG client talk to `relay.ng_socks` from inside R, and the media checks look for
`relay.media_ip`; nothing else differs between the two. (RtpxTwoNodes adds a second rtpxd
to the same R, media on 198.51.100.2 behind R's 198.51.100.1, NG on the next port of
10.13.0.1, for a set of two nodes.)

A and B have their default route via R and R has none, so nothing a test sends can leave the
machine; the host sends nothing to these addresses either (its NG client lives in R)."""
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rtpx_harness import ROOT, RTPXD, Rtpxd
from sip_proxy import Message, open_socket_in_netns
from test_sipp import SIPP_SHARE, tail, wait_text

sys.path.insert(0, str(ROOT / "bench" / "lib"))
from rtpengine import RtpEngine, bdecode, bencode  # noqa: E402  (bench's rtpengine launcher)

HERE = Path(__file__).parent
KAMAILIO_CFG = HERE / "kamailio" / "kamailio.cfg"
SCENARIOS = HERE / "sipp"

CALLER_IP, ROUTER_A_IP = "10.11.0.2", "10.11.0.1"
CALLEE_IP, ROUTER_B_IP = "10.12.0.2", "10.12.0.1"
MGMT_HOST_IP, MGMT_ROUTER_IP = "10.13.0.1", "10.13.0.2"
SIP_IP, SIP_PORT = "10.10.0.1", 5060   # Kamailio, on R's loopback
CALLEE_MEDIA_PORT = 6000               # sipp -rtp_echo port of the callee, for every call
CALLER_MEDIA_PORT = 6000               # base of the caller's [auto_media_port]
NG_PORT = 2223
PROBE_PORT = 9999
AUDIO_PCAP = "g711a.pcap"              # sipp's: 236 G.711 A-law packets over 7.05 s


def run(*cmd, check=True, timeout=30):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def in_ns(ns, *cmd, **kw):
    return run("ip", "netns", "exec", ns, *cmd, **kw)


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop_process(p, timeout=10):
    """SIGTERM, then SIGKILL; returns the exit status (None if never started)."""
    if p is None:
        return None
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


# --- network ----------------------------------------------------------------------------------

class Testbed:
    """Namespaces A and B, the management veth, and R's routing and A↔B block. R is either made
    here (create_router) or an existing namespace (an rtpxd's) handed to attach()."""

    def __init__(self, tag):
        self.tag = tag
        self.router = None
        self.own_router = False
        self.caller_ns, self.callee_ns = f"kma-{tag}", f"kmb-{tag}"
        self.router_a_if, self.router_b_if = f"ka{tag}", f"kb{tag}"  # R's ends
        self.mgmt_host_if, self.mgmt_router_if = f"km{tag}", f"km{tag}r"
        self._made = []  # what cleanup() removes: ("netns", name) / ("link", name)

    def create_mgmt_link(self):
        """The host end of the management veth, up, with MGMT_HOST_IP; its other end waits in
        the host until attach() moves it into R. Done first, so that a relay whose NG socket
        binds MGMT_HOST_IP can start before R exists."""
        have = run("ip", "-o", "-4", "addr", "show").stdout
        if f" {MGMT_HOST_IP}/" in have:
            raise RuntimeError(f"{MGMT_HOST_IP} is already on a host interface (a testbed left "
                               f"behind? `ip -o addr | grep {MGMT_HOST_IP}`, then ip link del it)")
        run("ip", "link", "add", self.mgmt_host_if, "type", "veth", "peer", "name",
            self.mgmt_router_if)
        self._made.append(("link", self.mgmt_host_if))
        run("ip", "addr", "add", f"{MGMT_HOST_IP}/30", "dev", self.mgmt_host_if)
        run("ip", "link", "set", self.mgmt_host_if, "up")

    def create_router(self):
        name = f"kmr-{self.tag}"
        run("ip", "netns", "add", name)
        self._made.append(("netns", name))
        self.own_router = True
        return name

    def attach(self, router):
        """Builds A, B and the management link around router namespace `router`."""
        self.router = router
        r = ["ip", "-n", router]
        run(*r, "link", "set", "lo", "up")
        run(*r, "addr", "add", f"{SIP_IP}/32", "dev", "lo")
        run("ip", "link", "set", self.mgmt_router_if, "netns", router)
        run(*r, "addr", "add", f"{MGMT_ROUTER_IP}/30", "dev", self.mgmt_router_if)
        run(*r, "link", "set", self.mgmt_router_if, "up")
        for ns, r_if, r_ip, ip in ((self.caller_ns, self.router_a_if, ROUTER_A_IP, CALLER_IP),
                                   (self.callee_ns, self.router_b_if, ROUTER_B_IP, CALLEE_IP)):
            run("ip", "netns", "add", ns)
            self._made.append(("netns", ns))
            run("ip", "link", "add", r_if, "netns", router, "type", "veth", "peer", "name",
                "veth0", "netns", ns)
            run(*r, "addr", "add", f"{r_ip}/24", "dev", r_if)
            run(*r, "link", "set", r_if, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "veth0")
            run("ip", "-n", ns, "link", "set", "veth0", "up")
            run("ip", "-n", ns, "route", "add", "default", "via", r_ip)
        in_ns(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for src, dst in (("10.11.0.0/24", "10.12.0.0/24"), ("10.12.0.0/24", "10.11.0.0/24")):
            in_ns(router, "iptables", "-A", "FORWARD", "-s", src, "-d", dst, "-m", "comment",
                  "--comment", "kamailio-test-a-b-block", "-j", "DROP")
        # Everything up before anything is sent (IPv4 needs no DAD; carrier comes at once).
        for ns, dev in ((self.caller_ns, "veth0"), (self.callee_ns, "veth0"),
                        (router, self.router_a_if), (router, self.router_b_if)):
            wait_for(lambda: "LOWER_UP" in run("ip", "-n", ns, "link", "show", dev).stdout, 5,
                     f"{dev} in {ns} to come up")

    def blocked_packets(self):
        """Packets R's A↔B drop rules have dropped so far."""
        out = in_ns(self.router, "iptables", "-L", "FORWARD", "-v", "-x", "-n").stdout
        return sum(int(line.split()[0]) for line in out.splitlines()
                   if "kamailio-test-a-b-block" in line)

    def verify_block(self):
        """A UDP probe A→B and one B→A: each is dropped by R's rule (its counter moves) and
        never reaches the other side. Deterministic: once the counter has moved the probe is
        gone, so the receiver is read without waiting."""
        for src_ns, src_ip, dst_ns, dst_ip in ((self.caller_ns, CALLER_IP, self.callee_ns,
                                                CALLEE_IP),
                                               (self.callee_ns, CALLEE_IP, self.caller_ns,
                                                CALLER_IP)):
            rx = open_socket_in_netns(dst_ns, (dst_ip, PROBE_PORT))
            tx = open_socket_in_netns(src_ns, (src_ip, 0))
            try:
                rx.setblocking(False)
                before = self.blocked_packets()
                tx.sendto(b"a-b probe", (dst_ip, PROBE_PORT))
                wait_for(lambda: self.blocked_packets() > before, 5,
                         f"R to drop the probe {src_ip} -> {dst_ip}")
                try:
                    data = rx.recv(100)
                except BlockingIOError:
                    data = None
                assert data is None, f"{dst_ip} received {data!r} straight from {src_ip}"
            finally:
                rx.close()
                tx.close()

    def cleanup(self):
        for kind, name in reversed(self._made):
            if kind == "netns":
                run("ip", "netns", "del", name, check=False)
            else:
                run("ip", "link", "del", name, check=False)
        self._made.clear()


# --- relays -----------------------------------------------------------------------------------

class RtpengineRelay:
    """rtpengine-daemon in a router namespace made here: media on MEDIA_IP (R's loopback),
    NG on 127.0.0.1 in R, userspace forwarding, deleted calls freed at once."""

    name = "rtpengine"
    TOOLS = ("rtpengine",)
    MEDIA_IP = "10.10.0.2"

    def __init__(self, tag, work):
        self.tag, self.work = tag, work
        self.rtpe = None
        self.media_ip = self.MEDIA_IP
        self.ng_socks = [f"127.0.0.1:{NG_PORT}"]

    def start(self, bed):
        bed.create_mgmt_link()
        bed.attach(bed.create_router())
        run("ip", "-n", bed.router, "addr", "add", f"{self.MEDIA_IP}/32", "dev", "lo")
        self.rtpe = RtpEngine(interface=self.MEDIA_IP, listen_ng=self.ng_socks[0],
                              netns=bed.router, cpus=f"0-{(os.cpu_count() or 1) - 1}",
                              port_min=30000, port_max=31999, log_level=6,
                              log_file=str(self.work / "rtpengine.log"))
        self.rtpe.start()

    def stop(self):
        if self.rtpe is None:
            return None
        rtpe, self.rtpe = self.rtpe, None
        rc = rtpe.stop()
        assert rc == 0, f"rtpengine exited with {rc}:\n{self.log_tail()}"
        return rc

    def cleanup(self):
        pass  # its namespace is the testbed's

    def log_tail(self):
        return tail(self.work / "rtpengine.log")


class RtpxRelay:
    """rtpxd through the Rtpxd harness: R is its namespace, NG on MGMT_HOST_IP (host)."""

    name = "rtpx"
    TOOLS = ()

    def __init__(self, tag, work):
        self.tag, self.work = tag, work
        self.d = None
        self.media_ip = Rtpxd.RTPX_V4
        self.ng_socks = [f"{MGMT_HOST_IP}:{NG_PORT}"]

    def start(self, bed):
        if not RTPXD.exists():
            raise RuntimeError(f"{RTPXD} is not built (set RTPX_BUILD or build it)")
        bed.create_mgmt_link()
        self.d = Rtpxd(self.tag, ng_listen=self.ng_socks[0])
        self.d.start()
        bed.attach(self.d.ns)

    def stop(self):
        if self.d is None or self.d.proc is None:
            return None
        rc = self.d.stop()
        assert rc == 0, f"rtpxd exited with {rc}:\n{self.d.read_log()}"
        return rc

    def cleanup(self):
        if self.d is not None:
            if self.d.proc and self.d.proc.poll() is None:
                self.d.stop()
            self.d.cleanup()

    def log_tail(self):
        lines = self.d.read_log().splitlines() if self.d else []
        return "--- rtpxd log (last 60 lines):\n" + "\n".join(lines[-60:]) + "\n"


class RtpxTwoNodes(RtpxRelay):
    """Two rtpxd, for a set of two NG nodes: the relay the checks look at is RtpxRelay's (R is
    its namespace, media on 192.0.2.2, NG on MGMT_HOST_IP:NG_PORT); `other` is a second rtpxd
    with a veth of its own into the same R (media on OTHER_V4 behind R's OTHER_PEER_V4), NG on
    MGMT_HOST_IP:NG_PORT+1, its config given `other_toml` (a session limit, say). Kamailio's
    set holds only the first unless KamailioEnv's ng_socks names both."""

    name = "rtpx, two nodes"
    OTHER_V4, OTHER_PEER_V4 = "198.51.100.2", "198.51.100.1"
    OTHER_V6, OTHER_PEER_V6 = "2001:db8:1::2", "2001:db8:1::1"

    def __init__(self, tag, work, other_toml=""):
        super().__init__(tag, work)
        self.other_toml = other_toml
        self.other = None
        self.other_media_ip = self.OTHER_V4
        self.other_ng_sock = f"{MGMT_HOST_IP}:{NG_PORT + 1}"

    def start(self, bed):
        super().start(bed)
        self.other = Rtpxd(f"{self.tag}n", extra_toml=self.other_toml,
                           ng_listen=self.other_ng_sock, ns=self.d.ns, rtpx_v4=self.OTHER_V4,
                           peer_v4=self.OTHER_PEER_V4, rtpx_v6=self.OTHER_V6,
                           peer_v6=self.OTHER_PEER_V6)
        self.other.start()

    def stop(self):
        other_rc = self.other.stop() if self.other is not None else None
        rc = super().stop()
        assert other_rc in (0, None), \
            f"the second rtpxd exited with {other_rc}:\n{self.other.read_log()}"
        return rc

    def cleanup(self):
        if self.other is not None:
            if self.other.proc and self.other.proc.poll() is None:
                self.other.stop()
            self.other.cleanup()
        super().cleanup()

    def log_tail(self):
        lines = self.other.read_log().splitlines() if self.other else []
        return (super().log_tail() + "--- second rtpxd log (last 30 lines):\n"
                + "\n".join(lines[-30:]) + "\n")


RELAYS = {"rtpengine": RtpengineRelay, "rtpx": RtpxRelay, "rtpx-two-nodes": RtpxTwoNodes}


# --- NG, from inside R ------------------------------------------------------------------------

def ng(router, addr, command, timeout=2.0):
    """One NG request (a dict with "command") from a socket in namespace `router`; the decoded
    reply (keys and strings as bytes). Raises TimeoutError."""
    host, port = addr.rsplit(":", 1)
    cookie = secrets.token_hex(8).encode()
    s = open_socket_in_netns(router, ("0.0.0.0", 0))
    try:
        s.settimeout(timeout)
        s.sendto(cookie + b" " + bencode(command), (host, int(port)))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                msg = s.recv(65536)
            except socket.timeout:
                raise TimeoutError(f"NG {addr}: no reply to {command['command']} within "
                                   f"{timeout}s") from None
            got, _, body = msg.partition(b" ")
            if got == cookie:
                return bdecode(body)
    finally:
        s.close()


# --- Kamailio ---------------------------------------------------------------------------------

class Kamailio:
    """kamailio in the foreground in R, its config from kamailio/kamailio.cfg."""

    def __init__(self, bed, ng_socks, work):
        self.bed, self.work = bed, work
        self.ng_socks = ng_socks
        self.rundir = work / "kamailio-run"
        self.cfg = work / "kamailio.cfg"
        self.log_path = work / "kamailio.log"
        self.proc = None

    def render(self):
        text = KAMAILIO_CFG.read_text()
        for name, value in (("SIP_IP", SIP_IP), ("SIP_PORT", str(SIP_PORT)),
                            ("NG_SOCKS", " ".join(f"udp:{s}" for s in self.ng_socks))):
            text = text.replace(f"@{name}@", value)
        assert "@" not in "".join(line for line in text.splitlines()
                                  if not line.lstrip().startswith("#")), "unfilled @TOKEN@"
        return text

    def start(self, timeout=20):
        self.rundir.mkdir(exist_ok=True)
        self.cfg.write_text(self.render())
        check = in_ns(self.bed.router, "kamailio", "-c", "-f", str(self.cfg), check=False)
        if check.returncode != 0:
            raise RuntimeError(f"kamailio -c rejects {self.cfg}:\n{check.stderr[-3000:]}")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.bed.router, "kamailio", "-f", str(self.cfg),
                 "-DD", "-E", "-Y", str(self.rundir), "-P", str(self.rundir / "kamailio.pid"),
                 "-w", str(self.rundir), "-m", "64", "-M", "8"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._answers_options, timeout, "Kamailio to answer OPTIONS", interval=0.2)
        return self

    def _answers_options(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"kamailio exited with {self.proc.returncode}:\n"
                               f"{tail(self.log_path)}")
        return sip_options(self.bed.caller_ns, CALLER_IP, (SIP_IP, SIP_PORT)) == 200

    def stop(self):
        rc = stop_process(self.proc)
        assert rc in (0, None), f"kamailio exited with {rc}:\n{tail(self.log_path)}"
        return rc

    def errors(self):
        """Kamailio's ERROR/CRITICAL log lines so far."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if "ERROR:" in line or "CRITICAL:" in line]


def sip_options(ns, src_ip, dst, timeout=0.5):
    """Status code of the answer to one OPTIONS sent from `src_ip` in `ns`, or None."""
    s = open_socket_in_netns(ns, (src_ip, 0))
    try:
        port = s.getsockname()[1]
        branch = "z9hG4bK-probe-" + secrets.token_hex(6)
        s.sendto((f"OPTIONS sip:{dst[0]}:{dst[1]} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP {src_ip}:{port};branch={branch}\r\n"
                  f"From: <sip:probe@{src_ip}>;tag={secrets.token_hex(4)}\r\n"
                  f"To: <sip:{dst[0]}:{dst[1]}>\r\n"
                  f"Call-ID: probe-{secrets.token_hex(6)}@{src_ip}\r\n"
                  f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                 dst)
        s.settimeout(timeout)
        try:
            return Message(s.recv(65535)).code
        except socket.timeout:
            return None
    finally:
        s.close()


# --- sipp -------------------------------------------------------------------------------------

class Sipp:
    """One sipp in namespace `ns` running scenario file sipp/<scenario>, cwd `work` (where
    pcap/ holds sipp's audio), every trace to <role>_*.log there."""

    def __init__(self, ns, ip, work, role, scenario, *args, calls=1, timeout=30,
                 trace_msg=True):
        self.work, self.role, self.timeout = work, role, timeout
        pcaps = work / "pcap"
        pcaps.mkdir(exist_ok=True)
        if not (pcaps / AUDIO_PCAP).exists():
            (pcaps / AUDIO_PCAP).symlink_to(SIPP_SHARE / AUDIO_PCAP)
        cmd = ["ip", "netns", "exec", ns, "sipp", "-sf", str(SCENARIOS / scenario),
               "-i", ip, "-p", str(SIP_PORT), "-mi", ip, *args, "-m", str(calls), "-nostdin",
               "-timeout", f"{timeout}s", "-timeout_error",
               "-trace_err", "-error_file", str(work / f"{role}_errors.log"),
               "-trace_screen", "-screen_file", str(work / f"{role}_screen.log")]
        if trace_msg:
            cmd += ["-trace_msg", "-message_file", str(work / f"{role}_messages.log")]
        with open(work / f"{role}.out", "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def wait(self, timeout=None):
        try:
            return self.proc.wait(timeout if timeout is not None else self.timeout + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"sipp {self.role} still running\n{self.logs()}") from None

    def logs(self):
        return "".join(tail(self.work / f"{self.role}{s}") for s in
                       (".out", "_errors.log", "_screen.log", "_messages.log"))


def callee(bed, work, scenario, calls=1, timeout=30, **kw):
    """The callee sipp in B (RTP echo on CALLEE_MEDIA_PORT), once it listens."""
    s = Sipp(bed.callee_ns, CALLEE_IP, work, "uas", scenario, "-mp", str(CALLEE_MEDIA_PORT),
             "-rtp_echo", calls=calls, timeout=timeout, **kw)
    wait_for(lambda: s.proc.poll() is not None or f"{CALLEE_IP}:{SIP_PORT}" in
             in_ns(bed.callee_ns, "ss", "-lnu").stdout, 10, "the callee sipp to listen")
    assert s.proc.poll() is None, f"callee sipp exited at once\n{s.logs()}"
    return s


def caller(bed, work, scenario, call_id_prefix, *args, calls=1, timeout=30, **kw):
    """The caller sipp in A, calling callee@B through Kamailio; Call-IDs are
    "<prefix>-<n>@10.11.0.2" for call n = 1, 2, ..."""
    return Sipp(bed.caller_ns, CALLER_IP, work, "uac", scenario, f"{SIP_IP}:{SIP_PORT}",
                "-s", "callee", "-key", "callee", f"{CALLEE_IP}:{SIP_PORT}",
                "-mp", str(CALLER_MEDIA_PORT), "-cid_str", f"{call_id_prefix}-%u@%s", *args,
                calls=calls, timeout=timeout, **kw)


# --- capture and its analysis -----------------------------------------------------------------

class Capture:
    """dumpcap in R on its interfaces towards A and B (UDP only: SIP and media), into one
    pcapng file."""

    def __init__(self, bed, path):
        self.bed, self.path = bed, path
        self.err = path.with_suffix(".err")
        self.proc = None

    def start(self):
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                # -f before the first -i: the filter of every interface (after one, of that
                # one only). UDP only: not the ICMP port-unreachables the caller sends back
                # for echoed RTP (sipp plays its pcap through a raw socket, nothing listens).
                ["ip", "netns", "exec", self.bed.router, "dumpcap", "-f", "udp", "-B", "64",
                 "-i", self.bed.router_a_if, "-i", self.bed.router_b_if, "-w", str(self.path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        wait_text(self.err, "Capturing on", self.proc, 15)
        return self

    def stop(self):
        """Sends a marker datagram from A and from B to R and stops once both are in the file
        (so is everything that crossed those links before them); returns dumpcap's summary."""
        tokens = []
        for ns, src, dst in ((self.bed.caller_ns, CALLER_IP, ROUTER_A_IP),
                             (self.bed.callee_ns, CALLEE_IP, ROUTER_B_IP)):
            token = b"capture-marker-" + secrets.token_hex(8).encode()
            s = open_socket_in_netns(ns, (src, 0))
            s.sendto(token, (dst, PROBE_PORT))
            s.close()
            tokens.append(token)
        try:
            wait_for(lambda: self.proc.poll() is None and self.path.exists() and
                     all(t in self.path.read_bytes() for t in tokens), 15,
                     "the capture markers in the file", interval=0.2)
        finally:
            rc = stop_process(self.proc)
        summary = self.err.read_text(errors="replace")
        assert rc == 0, f"dumpcap exited {rc}:\n{summary}"
        # "Packets received/dropped on interface 'ka1': 47838/0 (pcap:0/...)"
        drops = re.findall(r"received/dropped on interface '([^']+)': \d+/(\d+)", summary)
        assert len(drops) == 2 and all(d == "0" for _, d in drops), \
            f"the capture is incomplete, every check on it would be wrong:\n{summary}"
        return summary

    FIELDS = ("frame.time_epoch", "ip.src", "udp.srcport", "ip.dst", "udp.dstport",
              "sip.Call-ID", "sip.Method", "sip.Status-Code", "sip.CSeq.method",
              "sip.CSeq.seq",
              "sdp.owner.address", "sdp.connection_info.address", "sdp.media.port",
              "sdp.media_attr", "rtp.ssrc", "rtp.seq")

    def packets(self):
        """Every UDP packet as a Packet, SIP and SDP fields and heuristic RTP decoded."""
        args = ["tshark", "-r", str(self.path), "-n", "-o", "rtp.heuristic_rtp:TRUE",
                "-Y", "udp and not icmp", "-T", "fields", "-E", "separator=/t",
                "-E", "occurrence=a", "-E", "aggregator=|"]
        for f in self.FIELDS:
            args += ["-e", f]
        out = run(*args, timeout=120).stdout
        return [Packet.parse(line) for line in out.splitlines() if line]


@dataclass
class Packet:
    t: float
    src: str
    sport: int
    dst: str
    dport: int
    call_id: str = ""
    method: str = ""       # a request's method
    status: int = 0        # a response's code
    cseq_method: str = ""
    cseq: int = 0
    sdp_origin: str = ""
    sdp_addr: str = ""
    sdp_port: int = 0
    sdp_attrs: tuple = ()
    ssrc: int = -1         # RTP only
    seq: int = -1

    @classmethod
    def parse(cls, line):
        f = line.split("\t")
        f += [""] * (len(Capture.FIELDS) - len(f))
        first = [v.split("|")[0] for v in f]  # one SDP media section, one IP/UDP header
        return cls(t=float(first[0]), src=first[1], sport=int(first[2] or 0), dst=first[3],
                   dport=int(first[4] or 0), call_id=first[5], method=first[6],
                   status=int(first[7] or 0), cseq_method=first[8], cseq=int(first[9] or 0),
                   sdp_origin=first[10], sdp_addr=first[11], sdp_port=int(first[12] or 0),
                   sdp_attrs=tuple(a for a in f[13].split("|") if a),
                   ssrc=int(first[14], 0) if first[14] else -1,
                   seq=int(first[15]) if first[15] else -1)

    @property
    def is_rtp(self):
        return self.ssrc >= 0

    @property
    def has_sdp(self):
        return self.sdp_port > 0

    @property
    def direction(self):
        """The SDP's direction attribute (sendrecv when absent, RFC 4566 6)."""
        return next((a for a in self.sdp_attrs
                     if a in ("sendrecv", "sendonly", "recvonly", "inactive")), "sendrecv")

    def __str__(self):
        what = f"{self.method or self.status} (CSeq {self.cseq} {self.cseq_method})"
        sdp = (f" sdp c={self.sdp_addr} m={self.sdp_port} {self.direction}"
               if self.has_sdp else "")
        return f"{self.t:.3f} {self.src}:{self.sport} -> {self.dst}:{self.dport} {what}{sdp}"


@dataclass
class CallMedia:
    """One call as the capture saw it: its SIP messages and its RTP per leg."""
    call_id: str
    sip: list = field(default_factory=list)
    rtp: dict = field(default_factory=lambda: defaultdict(list))  # (src,sport,dst,dport)->pkts

    def messages(self, src=None, dst=None, method=None, status=None, cseq_method=None,
                 cseq=None):
        return [p for p in self.sip
                if (src is None or p.src == src) and (dst is None or p.dst == dst)
                and (method is None or p.method == method)
                and (status is None or p.status == status)
                and (cseq_method is None or p.cseq_method == cseq_method)
                and (cseq is None or p.cseq == cseq)]

    def first(self, **kw):
        found = self.messages(**kw)
        assert found, f"call {self.call_id}: no message {kw}; saw:\n{self.ladder()}"
        return found[0]

    def ladder(self):
        return "\n".join(f"  {p}" for p in self.sip)

    def legs(self, relay_ip):
        """The four RTP legs the SDPs of the initial INVITE and its answer set up:
        caller→relay, relay→callee, callee→relay, relay→caller, as (src, sport, dst, dport)."""
        offer_a = self.first(src=CALLER_IP, method="INVITE")
        offer_b = self.first(dst=CALLEE_IP, method="INVITE")
        answer_b = next(p for p in self.messages(src=CALLEE_IP, cseq_method="INVITE")
                        if p.has_sdp)
        answer_a = next(p for p in self.messages(dst=CALLER_IP, cseq_method="INVITE")
                        if p.has_sdp)
        a = (CALLER_IP, offer_a.sdp_port)
        ra = (relay_ip, answer_a.sdp_port)
        rb = (relay_ip, offer_b.sdp_port)
        b = (CALLEE_IP, answer_b.sdp_port)
        return {"caller->relay": (*a, *ra), "relay->callee": (*rb, *b),
                "callee->relay": (*b, *rb), "relay->caller": (*ra, *a)}


def calls_in(packets, relay_ip, slack=0.5):
    """{call_id: CallMedia} and the RTP packets no call explains. An RTP packet belongs to the
    call whose SDP put it on the relay's address and port at that time (the relay may give a
    port to a new call once the old one is deleted): the latest call that set up that relay
    port before the packet, if the packet is no later than `slack` s after that call's last
    SIP message and its other end is an address and port from that call's SDP too."""
    calls = {}
    for p in packets:
        if p.call_id:
            calls.setdefault(p.call_id, CallMedia(p.call_id)).sip.append(p)
    by_relay_port = defaultdict(list)  # relay's (addr, port) -> [(start, call)]
    for c in calls.values():
        c.sip.sort(key=lambda p: p.t)
        c.endpoints = {(p.sdp_addr, p.sdp_port) for p in c.sip if p.has_sdp}
        c.start, c.end = c.sip[0].t, c.sip[-1].t
        for ep in c.endpoints:
            if ep[0] == relay_ip:
                by_relay_port[ep].append((c.start, c))
    for owners in by_relay_port.values():
        owners.sort(key=lambda o: o[0])
    stray = []
    for p in packets:
        if not p.is_rtp:
            continue
        relay_end, other = (((p.dst, p.dport), (p.src, p.sport)) if p.dst == relay_ip
                            else ((p.src, p.sport), (p.dst, p.dport)))
        owner = None
        for start, c in by_relay_port.get(relay_end, []):
            if start <= p.t:
                owner = c
        if owner is None or p.t > owner.end + slack or other not in owner.endpoints:
            stray.append(p)
        else:
            owner.rtp[(p.src, p.sport, p.dst, p.dport)].append(p)
    return calls, stray


# --- the whole set-up -------------------------------------------------------------------------

class KamailioEnv:
    """Testbed + relay + Kamailio, started in that order and stopped in reverse.

    `relay` is a RELAYS key, `relay_options` keywords for its class. Kamailio's NG set is the
    relay's NG socket, or `ng_socks` ("ADDR:PORT[=WEIGHT]" each, as reachable from R) when
    given: e.g. the relay's and a second node's, for a test that makes one of them refuse
    calls."""

    def __init__(self, relay, tag, work, ng_socks=None, relay_options=None):
        self.work = work
        self.bed = Testbed(tag)
        self.relay = RELAYS[relay](tag, work, **(relay_options or {}))
        self.ng_socks = ng_socks
        self.kamailio = None

    TOOLS = ("kamailio", "sipp", "dumpcap", "tshark", "iptables")

    def start(self):
        missing = [t for t in self.TOOLS + self.relay.TOOLS if not shutil.which(t)]
        if missing:
            raise RuntimeError(f"not installed: {' '.join(missing)} (tools/test installs "
                               f"TEST_PACKAGES from tools/lib/common.sh)")
        self.relay.start(self.bed)
        self.bed.verify_block()
        wait_for(self.relay_answers_ping, 10, "the relay to answer an NG ping from R")
        self.kamailio = Kamailio(self.bed, self.ng_socks or self.relay.ng_socks,
                                 self.work).start()
        return self

    def relay_answers_ping(self):
        try:
            return self.ng({"command": "ping"}, timeout=0.5).get(b"result") == b"pong"
        except TimeoutError:
            return False

    def ng(self, command, node=None, timeout=2.0):
        """An NG request to the relay, or to `node` ("ADDR:PORT") from inside R."""
        return ng(self.bed.router, node or self.relay.ng_socks[0], command, timeout)

    def relay_knows(self, call_id):
        """NG `query` for `call_id` answers "ok": the relay has the call."""
        return self.ng({"command": "query", "call-id": call_id}).get(b"result") == b"ok"

    def relay_calls(self):
        """The Call-IDs NG `list` names (rtpengine lists at most 32 unless asked for more)."""
        return {c.decode() for c in self.ng({"command": "list"}).get(b"calls", [])}

    def stop(self):
        errors = []
        for what, step in (("kamailio", lambda: self.kamailio and self.kamailio.stop()),
                           ("relay", self.relay.stop), ("testbed", self.bed.cleanup),
                           ("relay cleanup", self.relay.cleanup)):
            try:
                step()
            except Exception as e:  # keep tearing down; report the first failure
                errors.append(f"{what}: {e}")
        if errors:
            raise AssertionError("; ".join(errors))

    def diagnostics(self):
        return ((tail(self.kamailio.log_path) if self.kamailio else "")
                + self.relay.log_tail())
