#!/usr/bin/env python3
"""A minimal SIP proxy over UDP for the integration tests (stdlib only), steering rtpx the way
a softswitch would: requests from the caller go to one fixed callee (`--target`), responses go
back along the Via path; the SDP of an INVITE goes through `rtpxctl offer`, the SDP of a 200 OK
to an INVITE through `rtpxctl answer`, and a BYE (or CANCEL, or a failed INVITE) ends the call
with `rtpxctl delete`.

Its own Via is pushed on every request and popped from every response; the Request-URI is
pointed at the target and the Contact of responses at the proxy, so in-dialog requests come
back here. Near-stateless: the only state is per-Call-ID (where the caller is, so requests
from the callee can be routed back) and a cache of rewritten SDP, so retransmissions of an
INVITE or a 200 OK get the same answer without asking rtpx twice.

The SIP peers may live in another network namespace than rtpxctl's gRPC server: with
`--netns NAME` only the UDP socket is opened in /var/run/netns/NAME (setns around socket()),
the process itself, and so rtpxctl, stays where it was started.

Logs one line per message and per rtpxctl call to `--log`; writes "READY" to stdout once the
socket is bound; stops on SIGTERM/SIGINT."""
import argparse
import ctypes
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000


def open_socket_in_netns(netns, bind):
    """A UDP socket bound in network namespace `netns`; the calling thread returns to its own
    namespace afterwards (a socket stays in the namespace it was created in)."""
    if not netns:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(bind)
        return s
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns({netns}): {os.strerror(e)}")
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(bind)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns(back): {os.strerror(e)}")
        return s
    finally:
        os.close(own)
        os.close(target)


class Message:
    """A SIP message: start line, ordered headers (name, value), body bytes."""

    COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
               "l": "content-length", "c": "content-type"}

    def __init__(self, data):
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = data.partition(b"\n\n")
        lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
        while lines and not lines[0].strip():  # keep-alive CRLFs before a message
            lines.pop(0)
        if not lines:
            raise ValueError("empty message")
        self.start = lines[0].strip()
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:  # folded header line
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                self.headers.append((name.strip(), value.strip()))
        length = self.get("content-length")
        self.body = body[:int(length)] if length and length.isdigit() else body
        self.is_response = self.start.startswith("SIP/2.0 ")
        if self.is_response:
            self.code = int(self.start.split()[1])
            self.method = None
        else:
            self.method, self.uri, _ = self.start.split(" ", 2)
            self.code = None

    @classmethod
    def canon(cls, name):
        n = name.lower()
        return cls.COMPACT.get(n, n)

    def get_all(self, name):
        n = self.canon(name)
        return [v for k, v in self.headers if self.canon(k) == n]

    def get(self, name):
        values = self.get_all(name)
        return values[0] if values else None

    def set(self, name, value):
        n = self.canon(name)
        for i, (k, _) in enumerate(self.headers):
            if self.canon(k) == n:
                self.headers[i] = (k, value)
                return
        self.headers.append((name, value))

    def vias(self):
        """Via values, one per hop (comma-separated Vias split), top first."""
        out = []
        for v in self.get_all("via"):
            out += [p.strip() for p in v.split(",") if p.strip()]
        return out

    def set_vias(self, vias):
        first = next((i for i, (k, _) in enumerate(self.headers) if self.canon(k) == "via"),
                     None)
        self.headers = [(k, v) for k, v in self.headers if self.canon(k) != "via"]
        at = first if first is not None else 0
        self.headers[at:at] = [("Via", v) for v in vias]

    def tag(self, name):
        m = re.search(r";\s*tag=([^;>\s]+)", self.get(name) or "")
        return m.group(1) if m else None

    def cseq_method(self):
        parts = (self.get("cseq") or "").split()
        return parts[1].upper() if len(parts) == 2 else None

    def has_sdp(self):
        return bool(self.body) and "application/sdp" in (self.get("content-type") or "").lower()

    def encode(self):
        self.set("Content-Length", str(len(self.body)))
        head = "\r\n".join([self.start] + [f"{k}: {v}" for k, v in self.headers])
        return head.encode() + b"\r\n\r\n" + self.body


def via_destination(via):
    """Where a response for this Via goes: received/rport if present, else sent-by."""
    m = re.match(r"SIP/2\.0/\w+\s+([^;]+)(.*)", via)
    if not m:
        raise ValueError(f"bad Via {via!r}")
    sent_by, params = m.group(1).strip(), m.group(2)
    host, _, port = sent_by.partition(":")
    port = int(port) if port else 5060
    if r := re.search(r";\s*received=([^;\s]+)", params):
        host = r.group(1)
    if r := re.search(r";\s*rport=(\d+)", params):
        port = int(r.group(1))
    return host, port


class Proxy:
    def __init__(self, args):
        self.args = args
        self.host, port = args.listen.rsplit(":", 1)
        self.port = int(port)
        thost, tport = args.target.rsplit(":", 1)
        self.target = (thost, int(tport))
        self.log_file = open(args.log, "a", buffering=1) if args.log else sys.stderr
        self.callers = {}   # Call-ID -> caller's address, for requests coming from the target
        self.sdp_cache = {}  # (kind, call-id, tags, body digest) -> rewritten body
        self.deleted = set()
        self.sock = open_socket_in_netns(args.netns, (self.host, self.port))

    def log(self, text):
        self.log_file.write(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} "
                            f"{text}\n")

    # --- rtpx ---
    def rtpxctl(self, *argv, stdin=None):
        cmd = [self.args.rtpxctl, "--server", self.args.server, *argv]
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=10)
            rc, out, err = r.returncode, r.stdout, r.stderr.decode(errors="replace").strip()
        except subprocess.TimeoutExpired:
            rc, out, err = -1, b"", "timed out"
        self.log(f"  rtpxctl {' '.join(argv)} -> rc={rc} in {time.monotonic() - t0:.3f}s"
                 + (f" stderr={err!r}" if err else ""))
        return rc, out

    def rewrite_sdp(self, kind, msg, argv):
        key = (kind, msg.get("call-id"), tuple(argv), hashlib.sha1(msg.body).hexdigest())
        if key in self.sdp_cache:
            self.log(f"  {kind}: retransmission, cached SDP")
            msg.body = self.sdp_cache[key]
            return True
        rc, out = self.rtpxctl(kind, *argv, stdin=msg.body)
        if rc != 0 or not out:
            self.log(f"  ERROR {kind} failed, SDP in:\n{msg.body.decode(errors='replace')}")
            return False
        self.log(f"  {kind} SDP in:\n{msg.body.decode(errors='replace')}"
                 f"  {kind} SDP out:\n{out.decode(errors='replace')}")
        self.sdp_cache[key] = out
        msg.body = out
        return True

    def delete(self, call_id, why):
        if call_id in self.deleted:
            self.log(f"  delete ({why}): already deleted")
            return
        self.deleted.add(call_id)
        self.rtpxctl("delete", "--call-id", call_id)

    # --- SIP ---
    def send(self, msg, dest):
        data = msg.encode()
        self.sock.sendto(data, dest)
        self.log(f"  -> {dest[0]}:{dest[1]} {msg.start} ({len(data)} bytes)")

    def reply(self, req, code, reason, src):
        """A stateless error response to a request we cannot forward."""
        resp = Message(f"SIP/2.0 {code} {reason}\r\n\r\n".encode())
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for v in (req.vias() if name == "Via" else req.get_all(name)):
                resp.headers.append((name, v))
        if not req.tag("to"):
            resp.set("To", (req.get("to") or "") + ";tag=proxy")
        self.send(resp, src)

    def branch(self, msg):
        """Derived from the incoming branch (RFC 3261 16.11): stable across retransmissions,
        and the same for an INVITE and its CANCEL or non-2xx ACK, as a stateless proxy must."""
        top = msg.vias()[0] if msg.vias() else ""
        m = re.search(r";\s*branch=([^;\s]+)", top)
        seed = m.group(1) if m else (msg.get("call-id") or "") + (msg.get("cseq") or "")
        return "z9hG4bK-rtpx-" + hashlib.sha1(seed.encode()).hexdigest()[:16]

    def on_request(self, msg, src):
        call_id = msg.get("call-id") or ""
        from_target = src == self.target
        if from_target:
            dest = self.callers.get(call_id)
            if dest is None:
                self.log("  ERROR request from the target for an unknown call")
                return self.reply(msg, 481, "Call/Transaction Does Not Exist", src)
        else:
            dest = self.target
            self.callers.setdefault(call_id, src)
            m = re.match(r"(sips?:)(?:([^@;>]+)@)?[^;>]+(.*)", msg.uri)
            user = (m.group(2) + "@") if m and m.group(2) else ""
            msg.uri = f"sip:{user}{dest[0]}:{dest[1]}"
            msg.start = f"{msg.method} {msg.uri} SIP/2.0"
        mf = msg.get("max-forwards")
        if mf is not None and mf.isdigit():
            if int(mf) <= 0:
                return self.reply(msg, 483, "Too Many Hops", src)
            msg.set("Max-Forwards", str(int(mf) - 1))
        vias = msg.vias()
        if vias and via_destination(vias[0]) != src:  # RFC 3261 18.2.1
            vias[0] += f";received={src[0]}"
        vias.insert(0, f"SIP/2.0/UDP {self.host}:{self.port};branch={self.branch(msg)}")
        msg.set_vias(vias)

        if msg.method == "INVITE" and msg.has_sdp():
            argv = ["--call-id", call_id, "--from-tag", msg.tag("from")]
            if not self.rewrite_sdp("offer", msg, argv):
                return self.reply(msg, 500, "Media Relay Offer Failed", src)
        elif msg.method in ("BYE", "CANCEL"):
            self.delete(call_id, msg.method)
        self.send(msg, dest)

    def on_response(self, msg, src):
        vias = msg.vias()
        if not vias or f"{self.host}:{self.port}" not in vias[0].split(";")[0]:
            self.log("  ERROR response whose top Via is not ours, dropped")
            return
        vias.pop(0)
        if not vias:
            self.log("  ERROR response with no Via left, dropped")
            return
        dest = via_destination(vias[0])
        msg.set_vias(vias)
        call_id = msg.get("call-id") or ""
        if msg.cseq_method() == "INVITE":
            if 200 <= msg.code < 300 and msg.has_sdp():
                argv = ["--call-id", call_id, "--from-tag", msg.tag("from"),
                        "--to-tag", msg.tag("to")]
                if not self.rewrite_sdp("answer", msg, argv):
                    self.log("  ERROR answer failed: 200 OK dropped")
                    return
            elif msg.code >= 300:
                self.delete(call_id, f"INVITE failed with {msg.code}")
        if msg.get("contact") and src == self.target:
            # In-dialog requests from the caller come back through the proxy.
            m = re.search(r"sips?:(?:([^@;>]+)@)?[^;>]+", msg.get("contact"))
            user = (m.group(1) + "@") if m and m.group(1) else ""
            msg.set("Contact", f"<sip:{user}{self.host}:{self.port}>")
        self.send(msg, dest)

    def serve(self):
        self.log(f"listening on {self.host}:{self.port} (netns {self.args.netns or '-'}), "
                 f"target {self.target[0]}:{self.target[1]}, rtpx {self.args.server}")
        print("READY", flush=True)
        while True:
            data, src = self.sock.recvfrom(65535)
            if not data.strip():
                continue  # keep-alive
            try:
                msg = Message(data)
            except ValueError as e:
                self.log(f"<- {src[0]}:{src[1]} unparsable ({e}): {data[:80]!r}")
                continue
            self.log(f"<- {src[0]}:{src[1]} {msg.start} call-id={msg.get('call-id')}")
            try:
                if msg.is_response:
                    self.on_response(msg, src)
                else:
                    self.on_request(msg, src)
            except Exception as e:  # one bad message must not stop the proxy
                self.log(f"  ERROR {type(e).__name__}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="IP:PORT to receive SIP on")
    ap.add_argument("--target", required=True, help="IP:PORT of the callee (UAS)")
    ap.add_argument("--netns", help="open the SIP socket in this network namespace")
    ap.add_argument("--rtpxctl", required=True)
    ap.add_argument("--server", required=True, help="rtpxd gRPC HOST:PORT")
    ap.add_argument("--log")
    args = ap.parse_args()
    proxy = Proxy(args)

    def stop(signum, _frame):
        proxy.log(f"signal {signum}, exiting")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    proxy.serve()


if __name__ == "__main__":
    main()
