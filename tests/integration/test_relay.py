"""Media relay through a real rtpxd: calls set up with rtpxctl (gRPC), kernel UDP peers in the
test's namespace (each on its own address), the bytes checked end to end, the stream checked
by tshark."""
import re
import subprocess
import time

import pytest

from rtpx_harness import peer_result as result, start_peer as peer

A_IP, B_IP, MALLORY_IP, PROXY_IP = "192.0.2.10", "192.0.2.20", "192.0.2.66", "192.0.2.30"


def sdp(ip, port, extra="", proto="RTP/AVP", fam="IP4"):
    return (f"v=0\r\no=- 1 1 IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\n"
            f"m=audio {port} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
            f"a=x-vendor-thing:keep me byte for byte\r\n{extra}a=sendrecv\r\n")


def media(sdp_text):
    """(address, port, rtcp port or None) of the first m= line."""
    c = re.search(r"^c=IN IP[46] (\S+)", sdp_text, re.M).group(1)
    port = int(re.search(r"^m=audio (\d+)", sdp_text, re.M).group(1))
    rtcp = re.search(r"^a=rtcp:(\d+)", sdp_text, re.M)
    return c, port, int(rtcp.group(1)) if rtcp else None


@pytest.fixture(scope="module")
def relay(rtpxd):
    for ip in (A_IP, B_IP, MALLORY_IP, PROXY_IP):
        rtpxd.in_ns("ip", "addr", "add", f"{ip}/24", "dev", rtpxd.peer_if)
    return rtpxd


class Call:
    _n = 0

    def __init__(self, d, a_port=4000, b_port=5000, extra=""):
        Call._n += 1
        self.d, self.id = d, f"call-{Call._n}-{time.time_ns()}"
        self.a_port, self.b_port = a_port, b_port
        self.offer = d.rtpxctl("offer", "--call-id", self.id, "--from-tag", "ta",
                               input=sdp(A_IP, a_port, extra)).stdout
        self.answer = d.rtpxctl("answer", "--call-id", self.id, "--from-tag", "ta",
                                "--to-tag", "tb", input=sdp(B_IP, b_port, extra)).stdout
        _, self.pb, self.pb_rtcp = media(self.offer)   # B sends here
        _, self.pa, self.pa_rtcp = media(self.answer)  # A sends here

    def delete(self):
        self.d.rtpxctl("delete", "--call-id", self.id)


def test_offer_answer_rewrite_sdp(relay):
    c = Call(relay)
    for text in (c.offer, c.answer):
        addr, port, rtcp = media(text)
        assert addr == relay.RTPX_V4
        assert port % 2 == 0 and rtcp == port + 1
        assert "a=x-vendor-thing:keep me byte for byte\r\n" in text
        assert "a=rtpmap:101 telephone-event/8000\r\n" in text
    assert c.pa != c.pb
    c.delete()


def test_rtp_and_rtcp_relayed_both_ways_byte_exact(relay):
    d = relay
    c = Call(d)
    n = 50
    relayed0 = d.counter("relayed")
    pb = peer(d, f"{B_IP}:{c.b_port}", f"{d.RTPX_V4}:{c.pb}", count=n, interval=5, ssrc="0xbbbb",
              expect=n, timeout=8, start_delay=0.3)
    pa = peer(d, f"{A_IP}:{c.a_port}", f"{d.RTPX_V4}:{c.pa}", count=n, interval=5, ssrc="0xaaaa",
              expect=n, timeout=8, start_delay=0.3)
    ra, rb = result(pa), result(pb)
    assert [r["data"] for r in rb["received"]] == ra["sent"]
    assert [r["data"] for r in ra["received"]] == rb["sent"]
    assert {r["from"] for r in rb["received"]} == {f"{d.RTPX_V4}:{c.pb}"}
    assert {r["from"] for r in ra["received"]} == {f"{d.RTPX_V4}:{c.pa}"}
    # RTCP on the odd ports, both ways (a receiver report).
    rr = "81c90007aaaaaaaa" + "00" * 24
    qa = peer(d, f"{A_IP}:{c.a_port + 1}", f"{d.RTPX_V4}:{c.pa_rtcp}", count=1, raw=rr,
              expect=1, timeout=4, start_delay=0.3)
    qb = peer(d, f"{B_IP}:{c.b_port + 1}", f"{d.RTPX_V4}:{c.pb_rtcp}", count=1, raw=rr,
              expect=1, timeout=4, start_delay=0.3)
    assert [r["data"] for r in result(qb)["received"]] == [rr]
    assert [r["data"] for r in result(qa)["received"]] == [rr]
    assert d.counter("relayed") == relayed0 + 2 * n + 2
    c.delete()


def test_latching_to_nat_port_and_strict_source(relay):
    d = relay
    c = Call(d)
    nat_port = 5999  # B's packets really come from here, not the SDP's 5000
    pb = peer(d, f"{B_IP}:{nat_port}", f"{d.RTPX_V4}:{c.pb}", count=10, interval=20, expect=10,
              timeout=6, start_delay=0.2)
    pa = peer(d, f"{A_IP}:{c.a_port}", f"{d.RTPX_V4}:{c.pa}", count=10, interval=20,
              expect=10, timeout=6, start_delay=0.5)
    ra, rb = result(pa), result(pb)
    assert len(ra["received"]) == 10
    # A's media went to where B really sends from (symmetric RTP), after B latched.
    assert len(rb["received"]) >= 5
    before = d.counter("flow_source_mismatch")
    bad = peer(d, f"{MALLORY_IP}:{c.b_port}", f"{d.RTPX_V4}:{c.pb}", count=5, interval=5,
               timeout=1)
    result(bad)
    d.wait_for(lambda: d.counter("flow_source_mismatch") == before + 5,
               what="5 strict-source drops")
    c.delete()


def test_stun_and_dtls_go_to_the_slow_path_not_to_the_peer(relay):
    """RFC 7983: STUN (first byte 0-3) and DTLS (20-63) on a media port are set aside for the
    control plane (slowpath_packets), never relayed, and never latch the flow."""
    d = relay
    c = Call(d)
    stun = "000100002112a442b7e7a701bc34d686fa87dfae"  # Binding request (RFC 8489 §5)
    dtls = "16fefd0000000000000000000101"  # DTLS 1.2 handshake record, 1 byte of body
    before = d.counter("slowpath_packets")
    pb = peer(d, f"{B_IP}:{c.b_port}", timeout=1.5)  # where A's media would go
    for raw in (stun, dtls):
        result(peer(d, f"{A_IP}:{c.a_port + 10}", f"{d.RTPX_V4}:{c.pa}", count=1, raw=raw,
                    timeout=0.2))
    d.wait_for(lambda: d.counter("slowpath_packets") == before + 2, what="2 slow-path packets")
    assert result(pb)["received"] == []
    # A's media latches A's flow to A's media port, not to the STUN's: B's media comes back there.
    pa = peer(d, f"{A_IP}:{c.a_port}", f"{d.RTPX_V4}:{c.pa}", count=5, interval=20, expect=5,
              timeout=6, start_delay=0.3)
    pb = peer(d, f"{B_IP}:{c.b_port}", f"{d.RTPX_V4}:{c.pb}", count=5, interval=20, expect=5,
              timeout=6, start_delay=0.6)
    ra, rb = result(pa), result(pb)
    assert [r["data"] for r in rb["received"]] == ra["sent"]
    assert [r["data"] for r in ra["received"]] == rb["sent"]
    c.delete()


def test_tshark_sees_clean_rtp_streams(relay, tmp_path):
    d = relay
    c = Call(d)
    cap = tmp_path / "call.pcap"
    ts = subprocess.Popen(["ip", "netns", "exec", d.ns, "tshark", "-q", "-i", d.peer_if, "-f",
                           f"udp and (port {c.pa} or port {c.pb})", "-w", str(cap)],
                          stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    pb = peer(d, f"{B_IP}:{c.b_port}", f"{d.RTPX_V4}:{c.pb}", count=100, interval=10,
              timeout=5)
    pa = peer(d, f"{A_IP}:{c.a_port}", f"{d.RTPX_V4}:{c.pa}", count=100, interval=10,
              timeout=5)
    result(pa), result(pb)
    time.sleep(0.5)
    ts.terminate()
    ts.wait(10)
    out = subprocess.run(["tshark", "-r", str(cap), "-d", f"udp.port=={c.pa},rtp", "-d",
                          f"udp.port=={c.pb},rtp", "-q", "-z", "rtp,streams"],
                         capture_output=True, text=True, check=True).stdout
    print(out)
    rows = [l for l in out.splitlines() if re.search(r"0x[0-9A-Fa-f]{8}", l)]
    # Four streams: A→rtpx, rtpx→B, B→rtpx, rtpx→A; 100 packets each, no loss, no seq errors.
    assert len(rows) == 4, out
    for row in rows:
        assert re.search(r"\s100\s+0 \(0\.0%\)", row), row
    c.delete()


def test_delete_frees_ports_and_flows(relay):
    d = relay
    c = Call(d)
    listed = d.rtpxctl("list").stdout
    assert c.id in listed
    c.delete()
    assert c.id not in d.rtpxctl("list").stdout
    r = d.rtpxctl("query", "--call-id", c.id, check=False)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr
    before = d.counter("unknown_udp_port")
    p = peer(d, f"{A_IP}:{c.a_port}", f"{d.RTPX_V4}:{c.pa}", count=3, interval=5, timeout=1)
    result(p)
    d.wait_for(lambda: d.counter("unknown_udp_port") >= before + 3, what="port closed")


def test_invalid_requests_are_refused_and_change_nothing(relay):
    d = relay
    before = d.rtpxctl("list").stdout
    r = d.rtpxctl("offer", "--call-id", "bad-1", "--from-tag", "x", input="v=0\r\nnonsense\r\n",
                  check=False)
    assert r.returncode != 0 and "INVALID_ARGUMENT" in r.stderr and "line" in r.stderr
    r = d.rtpxctl("answer", "--call-id", "nope", "--from-tag", "x", "--to-tag", "y",
                  input=sdp(B_IP, 5000), check=False)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr
    r = d.rtpxctl("delete", "--call-id", "nope", check=False)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr
    assert d.rtpxctl("list").stdout == before


def test_many_calls_leave_no_ports_or_flows(relay):
    d = relay
    calls = [Call(d) for _ in range(25)]  # through the CLI: slow per call, so a sample here
    listed = d.rtpxctl("list").stdout
    assert all(c.id in listed for c in calls)
    for c in calls:
        c.delete()
    listed = d.rtpxctl("list").stdout
    assert not any(c.id in listed for c in calls)

