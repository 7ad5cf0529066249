"""A real SIP call through rtpx: sipp UAC (plays a G.711 A-law pcap and an RFC 4733 DTMF pcap)
→ sip_proxy.py (rewrites the SDP with `rtpxctl offer`/`answer`, ends the call with `rtpxctl
delete`) → sipp UAS (echoes the RTP back). Everything SIP and media sits in the rtpxd's test
namespace, each party on its own address; the proxy opens its SIP socket there but runs
rtpxctl from the host namespace, where rtpxd's gRPC listens.

Checked: both sipps complete the call; rtpx counts packets both ways while the call is up; a
capture on the namespace side shows media only between each party and rtpx (never UAC↔UAS
directly), every packet the UAC played, the same streams on both sides of rtpx with no loss,
and rtpx's counters account for every packet; the call is gone after the BYE."""
import json
import re
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rtpx_harness import RTPXCTL

PROXY = Path(__file__).parent / "sip_proxy.py"
SIPP_SHARE = Path("/usr/share/sip-tester")  # Debian's sip-tester: the pcaps sit here, no pcap/
PCAPS = ("g711a.pcap", "dtmf_2833_1.pcap")   # what `-sn uac_pcap` plays, as pcap/NAME
UAC_IP, UAS_IP, PROXY_IP = "192.0.2.40", "192.0.2.50", "192.0.2.60"
SIP_PORT, UAS_MEDIA_PORT = 5060, 6000
SIPP_TIMEOUT = 20  # s; the call itself lasts about 9 s (8 s of audio, DTMF, 1 s, BYE)


def pcap_packets(path):
    """Number of packets in a classic (libpcap) capture file."""
    data = Path(path).read_bytes()
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}[data[:4]]
    n, off = 0, 24
    while off + 16 <= len(data):
        off += 16 + struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        n += 1
    return n


def wait_text(path, text, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path} after {timeout}s (exit {proc.poll()}):\n"
                         + (path.read_text(errors="replace") if path.exists() else ""))


def tail(path, n=60):
    if not path.exists():
        return f"--- {path.name}: (none)\n"
    lines = path.read_text(errors="replace").splitlines()
    return f"--- {path.name} (last {n} lines):\n" + "\n".join(lines[-n:]) + "\n"


@pytest.fixture(scope="module")
def sip_net(rtpxd):
    for ip in (UAC_IP, UAS_IP, PROXY_IP):
        rtpxd.in_ns("ip", "addr", "add", f"{ip}/24", "dev", rtpxd.peer_if)
    return rtpxd


def sipp(d, work, role, *args):
    """sipp in the namespace, cwd `work`, every trace to a named file there."""
    out = open(work / f"{role}.out", "w")
    cmd = ["ip", "netns", "exec", d.ns, "sipp", *args, "-m", "1", "-nostdin",
           "-timeout", f"{SIPP_TIMEOUT}s", "-timeout_error",
           "-trace_err", "-error_file", str(work / f"{role}_errors.log"),
           "-trace_msg", "-message_file", str(work / f"{role}_messages.log"),
           "-trace_logs", "-log_file", str(work / f"{role}_logs.log"),
           "-trace_screen", "-screen_file", str(work / f"{role}_screen.log")]
    try:
        return subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        out.close()


def sipp_logs(work, role):
    return "".join(tail(work / f"{role}{s}") for s in
                   (".out", "_errors.log", "_messages.log", "_screen.log"))


def rtp_directions(query):
    """{"to_uas"|"to_uac": direction} for the RTP directions of a Query answer."""
    out = {}
    for m in query["call"]["media"]:
        for dirn in m["directions"]:
            if dirn["kind"] == "STREAM_KIND_RTP":
                dest = dirn.get("destination", {}).get("address")
                key = {UAS_IP: "to_uas", UAC_IP: "to_uac"}.get(dest, f"to {dest}")
                out[key] = dirn
    return out


def test_sipp_call_through_sip_proxy_and_rtpx(sip_net, tmp_path):
    d = sip_net
    work = tmp_path
    (work / "pcap").mkdir()
    for name in PCAPS:
        (work / "pcap" / name).symlink_to(SIPP_SHARE / name)
    played = sum(pcap_packets(SIPP_SHARE / name) for name in PCAPS)  # 236 + 10
    cap, proxy_log = work / "media.pcap", work / "proxy.log"
    relayed0, no_route0 = d.counter("relayed"), d.counter("flow_no_route")
    procs = {}
    seen = {}      # direction -> packets, as rtpxctl query reported them during the call
    ports = {}     # direction -> rtpx's local port for it
    call_id = None
    t0 = time.monotonic()
    try:
        with open(work / "tshark.err", "w") as err:
            procs["tshark"] = subprocess.Popen(
                ["ip", "netns", "exec", d.ns, "tshark", "-q", "-i", d.peer_if, "-f",
                 f"arp or (udp and not port {SIP_PORT})", "-w", str(cap)],
                stdout=subprocess.DEVNULL, stderr=err)
        wait_text(work / "tshark.err", "Capturing on", procs["tshark"], 15)

        procs["uas"] = sipp(d, work, "uas", "-sn", "uas", "-i", UAS_IP, "-p", str(SIP_PORT),
                            "-mi", UAS_IP, "-mp", str(UAS_MEDIA_PORT), "-rtp_echo")
        with open(work / "proxy.out", "w") as out:
            procs["proxy"] = subprocess.Popen(
                [sys.executable, str(PROXY), "--listen", f"{PROXY_IP}:{SIP_PORT}",
                 "--target", f"{UAS_IP}:{SIP_PORT}", "--netns", d.ns, "--rtpxctl",
                 str(RTPXCTL), "--server", f"127.0.0.1:{d.grpc_port}", "--log",
                 str(proxy_log)], stdout=out, stderr=subprocess.STDOUT)
        wait_text(work / "proxy.out", "READY", procs["proxy"], 10)
        d.wait_for(lambda: f"{UAS_IP}:{SIP_PORT}" in d.in_ns("ss", "-lnu").stdout,
                   timeout=10, what="sipp UAS listening")

        procs["uac"] = sipp(d, work, "uac", "-sn", "uac_pcap", f"{PROXY_IP}:{SIP_PORT}",
                            "-i", UAC_IP, "-p", str(SIP_PORT), "-mi", UAC_IP)
        # While the call is up: per-direction packet counts from rtpx itself.
        while procs["uac"].poll() is None and time.monotonic() - t0 < SIPP_TIMEOUT + 5:
            calls = json.loads(d.rtpxctl("list", "--json").stdout).get("calls", [])
            ours = [c["call_id"] for c in calls if c["call_id"].endswith(f"@{UAC_IP}")]
            if ours:
                call_id = ours[0]
                r = d.rtpxctl("query", "--call-id", call_id, "--json", check=False)
                if r.returncode == 0:  # NOT_FOUND once the BYE went through
                    for k, dirn in rtp_directions(json.loads(r.stdout)).items():
                        seen[k] = int(dirn["statistics"]["packets"])
                        ports[k] = dirn["local"]["port"]
            time.sleep(0.25)
        uac_rc = procs["uac"].wait(timeout=SIPP_TIMEOUT + 5)
        assert uac_rc == 0, f"sipp UAC exited {uac_rc}\n{sipp_logs(work, 'uac')}{tail(proxy_log)}"

        # The BYE went through the proxy: rtpx no longer knows the call.
        assert call_id is not None, f"the call never showed in rtpxctl list\n{tail(proxy_log)}"
        assert call_id not in d.rtpxctl("list").stdout
        r = d.rtpxctl("query", "--call-id", call_id, check=False)
        assert r.returncode != 0 and "NOT_FOUND" in r.stderr

        time.sleep(0.3)  # the last echoes
        procs["tshark"].terminate()
        procs["tshark"].wait(timeout=10)
        uas_rc = procs["uas"].wait(timeout=10)  # after its 4 s timewait
        assert uas_rc == 0, f"sipp UAS exited {uas_rc}\n{sipp_logs(work, 'uas')}{tail(proxy_log)}"
    finally:
        for p in reversed(list(procs.values())):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    elapsed = time.monotonic() - t0

    log = proxy_log.read_text()
    assert "ERROR" not in log, log
    for op in ("offer", "answer", "delete"):
        assert re.search(rf"rtpxctl {op} --call-id {re.escape(call_id)} .*-> rc=0", log), \
            f"no successful rtpxctl {op} in the proxy's log:\n{log}"

    # rtpx saw RTP both ways while the call was up.
    assert seen.get("to_uas", 0) > 0 and seen.get("to_uac", 0) > 0, seen
    assert ports.get("to_uas") and ports.get("to_uac"), ports

    # Media on the wire, per (source, destination) address pair.
    fields = subprocess.run(["tshark", "-r", str(cap), "-T", "fields", "-e", "ip.src", "-e",
                             "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport", "-Y", "udp"],
                            capture_output=True, text=True, check=True).stdout
    flows = Counter(tuple(line.split("\t")) for line in fields.splitlines() if line)
    by_ips = Counter()
    for (src, _, dst, _), n in flows.items():
        by_ips[(src, dst)] += n
    rtpx = d.RTPX_V4
    a_in, b_out = by_ips[(UAC_IP, rtpx)], by_ips[(rtpx, UAS_IP)]
    b_in, a_out = by_ips[(UAS_IP, rtpx)], by_ips[(rtpx, UAC_IP)]
    summary = (f"UAC→rtpx {a_in}, rtpx→UAS {b_out}, UAS→rtpx {b_in}, rtpx→UAC {a_out}; "
               f"query during the call {seen}; flows {dict(flows)}")
    print(summary)
    assert by_ips[(UAC_IP, UAS_IP)] == 0 and by_ips[(UAS_IP, UAC_IP)] == 0, summary
    assert set(by_ips) == {(UAC_IP, rtpx), (rtpx, UAS_IP), (UAS_IP, rtpx), (rtpx, UAC_IP)}, \
        summary
    # Each party talks to the port rtpx put in the SDP the proxy handed it.
    assert {int(p) for (s, _, dd, p) in flows if s == UAC_IP} == {ports["to_uas"]}, summary
    assert {int(p) for (s, _, dd, p) in flows if s == UAS_IP} == {ports["to_uac"]}, summary
    assert {(dd, int(p)) for (s, _, dd, p) in flows if dd == UAS_IP} == \
        {(UAS_IP, UAS_MEDIA_PORT)}, summary
    assert a_in == played, summary          # every packet of both pcaps
    assert b_in == b_out, summary           # the UAS echoed every one it got
    # rtpx's counters account for every packet: relayed (seen on the wire) or dropped while it
    # resolved the UAS's MAC (flow_no_route: the first packets towards a new on-link peer).
    relayed = d.counter("relayed") - relayed0
    no_route = d.counter("flow_no_route") - no_route0
    summary += f"; relayed {relayed}, flow_no_route {no_route}"
    print(f"{summary}; call set-up to teardown {elapsed:.1f}s")
    assert relayed == b_out + a_out, summary
    assert relayed + no_route == a_in + b_in, summary
    assert no_route <= 5 and b_out >= played - 5, summary
    # Query counts are a snapshot taken before the BYE, so at most what crossed the wire.
    assert seen["to_uas"] <= a_in and seen["to_uac"] <= b_in, summary

    # The same RTP streams on both sides of rtpx, no loss beyond what the pcaps themselves
    # have (the DTMF pcap repeats its end packets, which tshark counts as negative loss).
    out = subprocess.run(["tshark", "-r", str(cap), "-d", f"udp.port=={ports['to_uas']},rtp",
                          "-d", f"udp.port=={ports['to_uac']},rtp", "-q", "-z", "rtp,streams"],
                         capture_output=True, text=True, check=True).stdout
    print(out)
    row = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+\d+\s+(\S+)\s+\d+\s+(0x[0-9A-Fa-f]{8})\s+"
                     r".+?\s+(\d+)\s+(-?\d+) \(")
    streams = {}
    for line in out.splitlines():
        if m := row.match(line):
            src, dst, ssrc, pkts, lost = m.groups()
            streams[(ssrc, src, dst)] = (int(pkts), int(lost))
    ssrcs = {s for s, _, _ in streams}
    assert len(ssrcs) == len(PCAPS), out  # one SSRC per pcap
    legs = [(UAC_IP, rtpx), (rtpx, UAS_IP), (UAS_IP, rtpx), (rtpx, UAC_IP)]
    for ssrc in ssrcs:
        assert {(s, dd) for x, s, dd in streams if x == ssrc} == set(legs), out
        _, source_lost = streams[(ssrc, UAC_IP, rtpx)]
        for leg in legs:
            assert streams[(ssrc, *leg)][1] == source_lost, (leg, out)
    audio = max(ssrcs, key=lambda s: streams[(s, UAC_IP, rtpx)][0])
    assert streams[(audio, UAC_IP, rtpx)] == (pcap_packets(SIPP_SHARE / PCAPS[0]), 0), out
    assert sum(streams[(s, rtpx, UAC_IP)][0] for s in ssrcs) == a_out, out
