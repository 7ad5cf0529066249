#!/usr/bin/env python3
"""Start and stop rtpengine as the baseline for rtpx benchmarks (Python stdlib only).

rtpengine runs as a benchmark needs it: in a given network namespace (``ip netns exec NS``),
pinned with ``taskset -c CPUS``, in the foreground, userspace forwarding only (``--table=-1``:
no kernel module, and no iptables chain), one media interface address, NG control on
``--listen-ng``, a port range, ``--num-threads``/``--media-num-threads`` equal to the number
of pinned CPUs, logging to a file, no config file (``--config-file=none``: Debian's
/etc/rtpengine/rtpengine.conf would otherwise add kernel table 0, HTTP/CLI listeners and
recording), no redis, no homer, and deleted calls freed at once (``--delete-delay=0``; the
default keeps them, and their ports, for 30 s).

``start()`` returns once rtpengine answers an NG ``ping``; ``stop()`` sends SIGTERM and waits.

    from rtpengine import RtpEngine
    with RtpEngine(interface="198.51.100.2", listen_ng="198.51.100.2:2223",
                   netns="ngt", cpus="1", log_file="/tmp/rtpengine.log") as rtpe:
        ...  # drive it through NG at rtpe.listen_ng (bench/ng_client.h, session_rate --ng)

From a shell, ``python3 bench/lib/rtpengine.py run ...`` runs it until Ctrl-C or SIGTERM;
``ping`` and ``cmdline`` help with scripting; ``--help`` on each says more.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time

__all__ = ["RtpEngine", "RtpEngineError", "bencode", "bdecode", "ng_request", "ng_ping"]


class RtpEngineError(RuntimeError):
    pass


# --- bencode and NG, just enough for ping and for scripts -------------------------------------

def bencode(value) -> bytes:
    """Encodes str/bytes, int, list/tuple and dict (keys sorted by their bytes)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return b"%d:%s" % (len(value), bytes(value))
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted(((k.encode() if isinstance(k, str) else bytes(k)), v)
                       for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes):
    """Decodes one value spanning all of ``data``; strings come back as bytes."""

    def value(pos: int, depth: int):
        if depth > 100:
            raise ValueError("bencode nested too deeply")
        if pos >= len(data):
            raise ValueError("bencode: unexpected end")
        c = data[pos:pos + 1]
        if c == b"i":
            end = data.index(b"e", pos)
            text = data[pos + 1:end]
            digits = text[1:] if text[:1] == b"-" else text
            if not digits.isdigit() or (digits[:1] == b"0" and (digits != b"0" or text != digits)):
                raise ValueError(f"bencode: bad integer {text!r}")
            return int(text), end + 1
        if c.isdigit():
            colon = data.index(b":", pos)
            text = data[pos:colon]
            if not text.isdigit() or (text[:1] == b"0" and text != b"0"):
                raise ValueError(f"bencode: bad length {text!r}")
            end = colon + 1 + int(text)
            if end > len(data):
                raise ValueError("bencode: string past the end")
            return data[colon + 1:end], end
        if c in (b"l", b"d"):
            items, pos = [], pos + 1
            while data[pos:pos + 1] != b"e":
                item, pos = value(pos, depth + 1)
                items.append(item)
            if c == b"l":
                return items, pos + 1
            if len(items) % 2 or not all(isinstance(k, bytes) for k in items[::2]):
                raise ValueError("bencode: bad dictionary")
            d = dict(zip(items[::2], items[1::2]))
            if len(d) != len(items) // 2:
                raise ValueError("bencode: duplicate key")
            return d, pos + 1
        raise ValueError(f"bencode: unexpected {c!r} at {pos}")

    try:
        result, end = value(0, 0)
    except IndexError as e:  # data.index() found no terminator
        raise ValueError("bencode: unterminated value") from e
    if end != len(data):
        raise ValueError("bencode: trailing bytes")
    return result


def _split_hostport(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"bad address {addr!r}: want HOST:PORT")
    return host.strip("[]"), int(port)


def ng_request(addr: str, command: dict, timeout: float = 1.0) -> dict:
    """Sends one NG request (a dict with "command") and returns the decoded reply dict
    (keys and string values as bytes). Raises TimeoutError or ValueError."""
    host, port = _split_hostport(addr)
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    cookie = secrets.token_hex(8).encode()
    with socket.socket(info[0], socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect(info[4])
        s.send(cookie + b" " + bencode(command))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                msg = s.recv(65536)
            except ConnectionRefusedError:  # ICMP port unreachable: nobody listens yet
                raise TimeoutError(f"NG {addr}: connection refused") from None
            except socket.timeout:
                raise TimeoutError(f"NG {addr}: no reply within {timeout} s") from None
            got, _, body = msg.partition(b" ")
            if got == cookie:
                return bdecode(body)


def ng_ping(addr: str, timeout: float = 0.5) -> bool:
    """True when something at ``addr`` answers an NG ping with "pong"."""
    try:
        return ng_request(addr, {"command": "ping"}, timeout).get(b"result") == b"pong"
    except (OSError, ValueError):
        return False


# --- the daemon -------------------------------------------------------------------------------

def cpu_count(cpus: str) -> int:
    """Number of CPUs in a taskset list such as "2", "2,3" or "2-5,8"."""
    n = 0
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
            raise ValueError(f"bad CPU list {cpus!r}")
        n += (int(hi) - int(lo) + 1) if hi else 1
    if n <= 0:
        raise ValueError(f"bad CPU list {cpus!r}")
    return n


class RtpEngine:
    """One rtpengine process for a benchmark run.

    interface  -- media address, "ADDR" or "NAME/ADDR[!ADVERTISED]" (rtpengine's --interface)
    listen_ng  -- "ADDR:PORT" for NG control; must be reachable from where the bench runs: the
                  namespace-side veth address is reachable from the host, 127.0.0.1 only from
                  inside the namespace (then ping goes through ``ip netns exec``)
    netns      -- network namespace to run in (None: the current one)
    cpus       -- taskset CPU list; --num-threads and --media-num-threads are its size
    """

    def __init__(self, interface: str, listen_ng: str, *, netns: str | None = None,
                 cpus: str = "0", port_min: int = 30000, port_max: int = 39999,
                 log_file: str = "rtpengine.log", log_level: int = 5, timeout: int = 60,
                 extra_args: list[str] | tuple[str, ...] = (), binary: str = "rtpengine"):
        self.interface = interface
        self.listen_ng = listen_ng
        self.netns = netns
        self.cpus = cpus
        self.threads = cpu_count(cpus)
        self.port_min = port_min
        self.port_max = port_max
        self.log_file = log_file
        self.log_level = log_level
        self.timeout = timeout
        self.extra_args = list(extra_args)
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        _split_hostport(listen_ng)  # validate early
        if not 0 < port_min < port_max <= 65535:
            raise ValueError(f"bad port range {port_min}-{port_max}")

    def rtpengine_args(self) -> list[str]:
        return [
            self.binary,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            f"--log-level={self.log_level}",
            "--table=-1",
            f"--interface={self.interface}",
            f"--listen-ng={self.listen_ng}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            f"--num-threads={self.threads}",
            f"--media-num-threads={self.threads}",
            "--delete-delay=0",
            f"--timeout={self.timeout}",
            *self.extra_args,
        ]

    def command(self) -> list[str]:
        """The full command line: [ip netns exec NS] taskset -c CPUS rtpengine ..."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, "taskset", "-c", self.cpus, *self.rtpengine_args()]

    def _ping_prefix(self) -> list[str] | None:
        """How to reach listen_ng: directly (None), or through ``ip netns exec``."""
        host, _ = _split_hostport(self.listen_ng)
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        return ["ip", "netns", "exec", self.netns] if self.netns and loopback else None

    def ping(self, timeout: float = 0.5) -> bool:
        prefix = self._ping_prefix()
        if prefix is None:
            return ng_ping(self.listen_ng, timeout)
        r = subprocess.run([*prefix, sys.executable, os.path.abspath(__file__), "ping",
                            self.listen_ng, "--timeout", str(timeout)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return r.returncode == 0

    def _check_interface(self) -> None:
        """rtpengine starts with a media address the namespace does not have and then fails
        every offer with "Ran out of ports"; catch that before starting."""
        addr = self.interface.rpartition("/")[2].partition("!")[0]
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return  # an interface name (or "any"): rtpengine resolves it itself
        if ip.is_unspecified:
            return
        netns = ["-n", self.netns] if self.netns else []
        out = subprocess.run(["ip", *netns, "-o", "addr", "show"], capture_output=True,
                             text=True, check=False).stdout
        have = {ipaddress.ip_interface(w[i + 1]).ip
                for w in (line.split() for line in out.splitlines())
                for i in range(len(w) - 1) if w[i] in ("inet", "inet6")}
        if ip not in have:
            where = f"network namespace {self.netns}" if self.netns else "this namespace"
            raise RtpEngineError(f"media address {ip} is not configured in {where}")

    def start(self, wait: float = 15.0) -> "RtpEngine":
        if self.proc is not None:
            raise RtpEngineError("rtpengine already started")
        self._check_interface()
        if self.ping(0.2):
            raise RtpEngineError(f"something already answers NG at {self.listen_ng}")
        log = open(self.log_file, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                tail = self._log_tail() or ("(nothing logged: rtpengine 10.5 exits 255 without "
                                            "a word on an option it does not know)\n")
                raise RtpEngineError(f"rtpengine exited with {rc} during start-up; "
                                     f"see {self.log_file}:\n{tail}")
            if self.ping(0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RtpEngineError(f"rtpengine did not answer NG ping at {self.listen_ng} within "
                             f"{wait} s; see {self.log_file}:\n{self._log_tail()}")

    def stop(self, wait: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``wait`` s, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            # `ip netns exec` and taskset exec() their command, so this is rtpengine's pid.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_file, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "RtpEngine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- command line -----------------------------------------------------------------------------

def _add_daemon_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--netns", help="network namespace to run in (default: the current one)")
    p.add_argument("--cpus", default="0",
                   help="taskset CPU list; sets --num-threads/--media-num-threads (default 0)")
    p.add_argument("--interface", required=True,
                   help="media address, ADDR or NAME/ADDR[!ADVERTISED]")
    p.add_argument("--listen-ng", required=True,
                   help="NG control ADDR:PORT, reachable from where the bench runs")
    p.add_argument("--port-min", type=int, default=30000)
    p.add_argument("--port-max", type=int, default=39999)
    p.add_argument("--log-file", default="rtpengine.log")
    p.add_argument("--log-level", type=int, default=5, help="syslog level, 7 = debug")
    p.add_argument("--timeout", type=int, default=60, help="RTP timeout, seconds")
    p.add_argument("--binary", default="rtpengine")
    p.add_argument("extra", nargs="*", metavar="-- RTPENGINE_ARG",
                   help="further rtpengine options, after --")


def _daemon(a: argparse.Namespace) -> RtpEngine:
    return RtpEngine(a.interface, a.listen_ng, netns=a.netns, cpus=a.cpus, port_min=a.port_min,
                     port_max=a.port_max, log_file=a.log_file, log_level=a.log_level,
                     timeout=a.timeout, extra_args=a.extra, binary=a.binary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Runs rtpengine pinned, in a namespace, "
        "userspace-only, with NG control, until Ctrl-C/SIGTERM; or pings NG.",
        epilog="example: rtpengine.py run --netns ngt --cpus 1 --interface 198.51.100.2 "
               "--listen-ng 198.51.100.2:2223 --log-file /tmp/rtpengine.log")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start rtpengine, wait for NG ping, run until Ctrl-C or "
                                     "SIGTERM, then stop it (SIGTERM and wait)")
    _add_daemon_args(run)
    run.add_argument("--wait", type=float, default=15.0, help="start-up timeout, seconds")
    cmdline = sub.add_parser("cmdline", help="print the command line `run` would use")
    _add_daemon_args(cmdline)
    ping = sub.add_parser("ping", help="exit 0 when ADDR:PORT answers an NG ping")
    ping.add_argument("addr")
    ping.add_argument("--timeout", type=float, default=1.0)
    a = ap.parse_args(argv)

    if a.cmd == "ping":
        ok = ng_ping(a.addr, a.timeout)
        print("pong" if ok else "no answer")
        return 0 if ok else 1
    rtpe = _daemon(a)
    if a.cmd == "cmdline":
        print(shlex.join(rtpe.command()))
        return 0

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rtpe.start(a.wait)
    print(f"rtpengine pid {rtpe.pid} ready; NG at {rtpe.listen_ng}; log {rtpe.log_file}",
          flush=True)
    print(shlex.join(rtpe.command()), flush=True)
    while not stop and rtpe.proc is not None and rtpe.proc.poll() is None:
        time.sleep(0.2)
    died = rtpe.proc is not None and rtpe.proc.poll() is not None
    rc = rtpe.stop()
    print(f"rtpengine exited with {rc}", flush=True)
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
