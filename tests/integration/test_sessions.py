"""Sessions through a real rtpxd (issue #3): re-offers that move a leg or put it on hold, the
session timeouts and their events, 1,000 concurrent calls set up and torn down without a leaked
port or flow, IPv6 and IPv4/IPv6 bridging. Peers are kernel UDP sockets in the rtpxd's test
namespace, each on its own address; calls go through rtpxctl (gRPC) or bench/session_rate."""
import json
import os
import re
import select
import subprocess
import time
from datetime import datetime, timezone

import pytest

from rtpx_harness import BUILD, EventWatch, Rtpxd, start_peer as peer
from rtpx_harness import peer_result

SESSION_RATE = BUILD / "bench" / "session_rate"
A_IP, A2_IP, B_IP, C_IP = "192.0.2.10", "192.0.2.11", "192.0.2.20", "192.0.2.30"
A6_IP, B6_IP = "2001:db8::10", "2001:db8::20"
# 2000 RTP/RTCP pairs: exactly what 1,000 two-leg calls take.
PORT_MIN, PORT_MAX = 30000, 33999
HELD = 1000

_daemons = [0]


def _running(extra_toml):
    """A started rtpxd with the test's peer addresses; checks it stops cleanly."""
    _daemons[0] += 1
    d = Rtpxd(f"{os.getpid() % 1000}s{_daemons[0]}", extra_toml=extra_toml)
    with d.running():
        for ip in (A_IP, A2_IP, B_IP, C_IP):
            d.in_ns("ip", "addr", "add", f"{ip}/24", "dev", d.peer_if)
        for ip in (A6_IP, B6_IP):
            d.in_ns("ip", "-6", "addr", "add", f"{ip}/64", "dev", d.peer_if, "nodad")
        yield d


@pytest.fixture(scope="module")
def d():
    yield from _running(f"[sessions]\nport_min = {PORT_MIN}\nport_max = {PORT_MAX}\n")


@pytest.fixture(scope="module")
def short():
    """An rtpxd whose every session timeout is short."""
    yield from _running("[sessions]\nno_media_s = 1\none_sided_s = 1\noffer_unanswered_s = 1\n"
                        "delete_delay_s = 2\n")


# --- SDP, calls, peers ---

def sdp(ip, port, direction="sendrecv", version=1, mux=False):
    fam = "IP6" if ":" in ip else "IP4"
    return (f"v=0\r\no=- 1 {version} IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\n" + ("a=rtcp-mux\r\n" if mux else "")
            + f"a={direction}\r\n")


def media(sdp_text):
    """(address, port) of the first m= line."""
    c = re.search(r"^c=IN IP[46] (\S+)", sdp_text, re.M).group(1)
    return c, int(re.search(r"^m=audio (\d+)", sdp_text, re.M).group(1))


def ep(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


_calls = [0]


class Call:
    """A call from leg "ta" (A) answered by leg "tb" (B). pa: the rtpx port A sends to,
    pb: the one B sends to; ra / rb: the rtpx address each leg sees."""

    def __init__(self, d, a, b, offer_args=()):
        _calls[0] += 1
        self.d, self.id = d, f"sess-{_calls[0]}-{time.time_ns()}"
        self.offer = d.rtpxctl("offer", "--call-id", self.id, "--from-tag", "ta", *offer_args,
                               input=sdp(*a)).stdout
        self.answer = d.rtpxctl("answer", "--call-id", self.id, "--from-tag", "ta",
                                "--to-tag", "tb", input=sdp(*b)).stdout
        self.rb, self.pb = media(self.offer)
        self.ra, self.pa = media(self.answer)

    def reoffer(self, offerer, offer_sdp, answer_sdp):
        """An offer from leg `offerer` ("ta" or "tb") and the other leg's answer: the SDPs rtpx
        returns (for the answerer, for the offerer)."""
        other = "tb" if offerer == "ta" else "ta"
        o = self.d.rtpxctl("offer", "--call-id", self.id, "--from-tag", offerer,
                           input=offer_sdp).stdout
        a = self.d.rtpxctl("answer", "--call-id", self.id, "--from-tag", offerer,
                           "--to-tag", other, input=answer_sdp).stdout
        return o, a

    def query(self):
        return json.loads(self.d.rtpxctl("query", "--call-id", self.id, "--json").stdout)["call"]

    def delete(self, check=True):
        return self.d.rtpxctl("delete", "--call-id", self.id, "--delay", "0", check=check)


def result(p):
    return peer_result(p, timeout=30)


def datas(r):
    return [x["data"] for x in r["received"]]


START = 0.8  # s: every peer of an exchange binds its socket before anyone sends
QUIET = 1.0  # s after sending starts that a peer expecting nothing keeps listening
PATIENT = 4.0  # s that a peer expecting packets waits at most (it stops once it has them all)


def exchange(d, a_bind, a_to, b_bind, b_to, n=20, listen=(), a_gets=True, b_gets=True):
    """A and B each send n RTP packets (5 ms apart) to rtpx; `listen` endpoints only record.
    Results of A, B and the listeners. a_gets / b_gets: whether that side should receive."""
    listeners = [peer(d, e, timeout=START + QUIET) for e in listen]
    pa = peer(d, a_bind, a_to, count=n, interval=5, ssrc="0xaaaa", expect=n,
              timeout=PATIENT if a_gets else QUIET, start_delay=START)
    pb = peer(d, b_bind, b_to, count=n, interval=5, ssrc="0xbbbb", expect=n,
              timeout=PATIENT if b_gets else QUIET, start_delay=START)
    return result(pa), result(pb), [result(p) for p in listeners]


def assert_relayed(ra, rb, a_sees, b_sees):
    """Each side received exactly what the other sent, in order, from the rtpx endpoint its SDP
    showed."""
    assert datas(rb) == ra["sent"], f"B got {len(rb['received'])}/{len(ra['sent'])} of A's"
    assert datas(ra) == rb["sent"], f"A got {len(ra['received'])}/{len(rb['sent'])} of B's"
    assert {x["from"] for x in ra["received"]} == {a_sees}
    assert {x["from"] for x in rb["received"]} == {b_sees}


def wait_neighbor(d, ip):
    """Until rtpxd has resolved `ip` (a leg's new address), so no packet waits for ARP/ND."""
    def reachable():
        for n in d.stats().get("neighbors", []):
            if n["ip_address"] == ip and n["state"] in ("NEIGHBOR_STATE_REACHABLE",
                                                       "NEIGHBOR_STATE_STALE"):
                return True
        return False
    d.wait_for(reachable, timeout=5, what=f"neighbor {ip} resolved")


def direction(call, frm, kind="STREAM_KIND_RTP"):
    for m in call["media"]:
        for x in m["directions"]:
            if x["from_tag"] == frm and x["kind"] == kind:
                return x
    raise AssertionError(f"no {kind} direction from {frm} in {call}")


def gauges(d):
    """(calls, flows, RTP/RTCP port pairs in use on media0) from rtpxctl stats --json."""
    s = d.stats()["sessions"]
    pairs = {p["interface"]: int(p["pairs_in_use"]) for p in s["media_ports"]}
    return int(s["calls"]), int(s["flows"]), pairs["media0"]


def metric(text, name, labels=""):
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def assert_gone(d, call_id, ports):
    """Query says NOT_FOUND, and packets to the call's old ports find no session."""
    r = d.rtpxctl("query", "--call-id", call_id, check=False)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr, r.stderr
    before = d.counter("unknown_udp_port")
    for port in ports:
        result(peer(d, f"{C_IP}:7000", f"{d.RTPX_V4}:{port}", count=2, interval=5, timeout=0.3))
    d.wait_for(lambda: d.counter("unknown_udp_port") == before + 2 * len(ports),
               what=f"{2 * len(ports)} packets to the freed ports counted as unknown_udp_port")


# --- 1. re-offers ---

def test_reoffer_moves_offerer_to_new_address(d):
    """A re-offers from a second address and port: its media reaches B from there, B's media
    follows it there, its old endpoint gets nothing, and the old source is now refused."""
    c = Call(d, (A_IP, 4000), (B_IP, 5000))
    try:
        ra, rb, _ = exchange(d, f"{A_IP}:4000", ep(c.ra, c.pa), f"{B_IP}:5000", ep(c.rb, c.pb))
        assert_relayed(ra, rb, ep(c.ra, c.pa), ep(c.rb, c.pb))

        o, a = c.reoffer("ta", sdp(A2_IP, 4100, version=2), sdp(B_IP, 5000, version=2))
        assert media(o) == (c.rb, c.pb) and media(a) == (c.ra, c.pa), "rtpx ports changed"
        x = direction(c.query(), "tb")
        assert x["destination"] == {"address": A2_IP, "port": 4100}
        wait_neighbor(d, A2_IP)
        ra, rb, (old,) = exchange(d, f"{A2_IP}:4100", ep(c.ra, c.pa), f"{B_IP}:5000",
                                  ep(c.rb, c.pb), listen=[f"{A_IP}:4000"])
        assert_relayed(ra, rb, ep(c.ra, c.pa), ep(c.rb, c.pb))
        assert old["received"] == [], "A's old endpoint still gets media"
        latched = direction(c.query(), "ta")["statistics"]["latched_source"]
        assert latched == {"address": A2_IP, "port": 4100}

        # The old endpoint is no longer A: strict source drops what it sends.
        mismatch = d.counter("flow_source_mismatch")
        listen_b = peer(d, f"{B_IP}:5000", timeout=START + QUIET)
        result(peer(d, f"{A_IP}:4000", ep(c.ra, c.pa), count=5, interval=5, timeout=0.3,
                    start_delay=START))
        assert result(listen_b)["received"] == []
        d.wait_for(lambda: d.counter("flow_source_mismatch") == mismatch + 5,
                   what="5 strict-source drops from A's old endpoint")
    finally:
        c.delete()


def test_reoffer_from_answerer_moves_its_port(d):
    """The answering leg re-offers with a new port (same address): A's media goes there."""
    c = Call(d, (A_IP, 4010), (B_IP, 5010))
    try:
        ra, rb, _ = exchange(d, f"{A_IP}:4010", ep(c.ra, c.pa), f"{B_IP}:5010", ep(c.rb, c.pb))
        assert_relayed(ra, rb, ep(c.ra, c.pa), ep(c.rb, c.pb))

        o, a = c.reoffer("tb", sdp(B_IP, 5110, version=2), sdp(A_IP, 4010, version=2))
        assert media(o) == (c.ra, c.pa) and media(a) == (c.rb, c.pb), "rtpx ports changed"
        ra, rb, (old,) = exchange(d, f"{A_IP}:4010", ep(c.ra, c.pa), f"{B_IP}:5110",
                                  ep(c.rb, c.pb), listen=[f"{B_IP}:5010"])
        assert_relayed(ra, rb, ep(c.ra, c.pa), ep(c.rb, c.pb))
        assert old["received"] == [], "B's old port still gets media"
    finally:
        c.delete()


def test_hold_and_resume_by_reoffer(d):
    """sendonly/recvonly stops the held direction, inactive both, sendrecv resumes; held
    packets are counted as flow_not_forwarding, per call and per worker."""
    c = Call(d, (A_IP, 4020), (B_IP, 5020))
    a_to, b_to = ep(c.ra, c.pa), ep(c.rb, c.pb)
    a_sees, b_sees = a_to, b_to
    n = 10
    try:
        ra, rb, _ = exchange(d, f"{A_IP}:4020", a_to, f"{B_IP}:5020", b_to, n=n)
        assert_relayed(ra, rb, a_sees, b_sees)

        # A puts B on hold: A still sends, B's media is not forwarded.
        before = d.counter("flow_not_forwarding")
        o, _ = c.reoffer("ta", sdp(A_IP, 4020, "sendonly", 2), sdp(B_IP, 5020, "recvonly", 2))
        assert "a=sendonly\r\n" in o
        q = c.query()
        assert direction(q, "ta")["forwarding"] is True
        assert direction(q, "tb")["forwarding"] is False
        ra, rb, _ = exchange(d, f"{A_IP}:4020", a_to, f"{B_IP}:5020", b_to, n=n, a_gets=False)
        assert datas(rb) == ra["sent"]
        assert ra["received"] == [], "B's media reached A on hold"
        d.wait_for(lambda: d.counter("flow_not_forwarding") == before + n,
                   what=f"{n} flow_not_forwarding drops")
        held = int(direction(c.query(), "tb")["statistics"]["dropped_not_forwarding"])
        assert held == n

        # Inactive: nothing either way.
        before = d.counter("flow_not_forwarding")
        c.reoffer("ta", sdp(A_IP, 4020, "inactive", 3), sdp(B_IP, 5020, "inactive", 3))
        ra, rb, _ = exchange(d, f"{A_IP}:4020", a_to, f"{B_IP}:5020", b_to, n=n, a_gets=False,
                             b_gets=False)
        assert ra["received"] == [] and rb["received"] == []
        d.wait_for(lambda: d.counter("flow_not_forwarding") == before + 2 * n,
                   what=f"{2 * n} flow_not_forwarding drops")
        # RTCP still flows both ways on hold (RFC 3264 section 8.4).
        rr = "81c90007aaaaaaaa" + "00" * 24
        qa = peer(d, f"{A_IP}:4021", ep(c.ra, c.pa + 1), count=1, raw=rr, expect=1,
                  timeout=PATIENT, start_delay=START)
        qb = peer(d, f"{B_IP}:5021", ep(c.rb, c.pb + 1), count=1, raw=rr, expect=1,
                  timeout=PATIENT, start_delay=START)
        assert datas(result(qb)) == [rr] and datas(result(qa)) == [rr]

        # Resumed.
        before = d.counter("flow_not_forwarding")
        c.reoffer("ta", sdp(A_IP, 4020, "sendrecv", 4), sdp(B_IP, 5020, "sendrecv", 4))
        q = c.query()
        assert direction(q, "ta")["forwarding"] and direction(q, "tb")["forwarding"]
        ra, rb, _ = exchange(d, f"{A_IP}:4020", a_to, f"{B_IP}:5020", b_to, n=n)
        assert_relayed(ra, rb, a_sees, b_sees)
        assert d.counter("flow_not_forwarding") == before
    finally:
        c.delete()


# --- 4. IPv6 ---

def test_ipv6_call_relays_both_ways(d):
    c = Call(d, (A6_IP, 4200), (B6_IP, 5200))
    try:
        assert c.ra == c.rb == d.RTPX_V6
        assert "c=IN IP6 2001:db8::2\r\n" in c.offer and "c=IN IP6 2001:db8::2\r\n" in c.answer
        wait_neighbor(d, A6_IP)
        wait_neighbor(d, B6_IP)
        ra, rb, _ = exchange(d, ep(A6_IP, 4200), ep(c.ra, c.pa), ep(B6_IP, 5200),
                             ep(c.rb, c.pb), n=30)
        # rtp_peer writes a source as "addr:port", also for IPv6.
        assert_relayed(ra, rb, f"{d.RTPX_V6}:{c.pa}", f"{d.RTPX_V6}:{c.pb}")
    finally:
        c.delete()


def test_ipv4_to_ipv6_bridge_relays_both_ways(d):
    """A on IPv4 offers; B is given rtpx's IPv6 address and answers from IPv6."""
    c = Call(d, (A_IP, 4210), (B6_IP, 5210), offer_args=("--answerer-family", "ipv6"))
    try:
        assert (c.rb, c.ra) == (d.RTPX_V6, d.RTPX_V4)
        assert "c=IN IP6 2001:db8::2\r\n" in c.offer and "c=IN IP4 192.0.2.2\r\n" in c.answer
        wait_neighbor(d, B6_IP)
        ra, rb, _ = exchange(d, f"{A_IP}:4210", ep(c.ra, c.pa), ep(B6_IP, 5210),
                             ep(c.rb, c.pb), n=30)
        assert_relayed(ra, rb, f"{d.RTPX_V4}:{c.pa}", f"{d.RTPX_V6}:{c.pb}")
        # RTCP on the next ports, both ways (a receiver report each).
        rr = "81c90007aaaaaaaa" + "00" * 24
        qa = peer(d, f"{A_IP}:4211", ep(c.ra, c.pa + 1), count=1, raw=rr, expect=1,
                  timeout=PATIENT, start_delay=START)
        qb = peer(d, ep(B6_IP, 5211), ep(c.rb, c.pb + 1), count=1, raw=rr, expect=1,
                  timeout=PATIENT, start_delay=START)
        assert datas(result(qb)) == [rr] and datas(result(qa)) == [rr]
        q = c.query()
        assert direction(q, "ta")["destination"] == {"address": B6_IP, "port": 5210}
        assert direction(q, "tb")["destination"] == {"address": A_IP, "port": 4210}
    finally:
        c.delete()


# --- 3. 1,000 calls ---

def session_rate(d, prefix):
    return subprocess.Popen([str(SESSION_RATE), "--server", f"127.0.0.1:{d.grpc_port}",
                             "--calls", str(HELD), "--concurrency", "8", "--hold",
                             "--prefix", prefix], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def held_line(p, timeout=60):
    """session_rate --hold's JSON line, once every call is set up."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    assert r, "session_rate did not set the calls up in time"
    return json.loads(p.stdout.readline())


def test_thousand_calls_leave_no_ports_or_flows(d):
    assert d.rtpxctl("list").stdout.count("\n") == 1, "calls left over by another test"
    base = gauges(d)
    assert base == (0, 0, 0)
    metrics = d.http_get("/metrics")
    assert metric(metrics, "rtpx_media_port_pairs", '{interface="media0"}') == 2 * HELD
    for rnd in (1, 2):  # the second round takes every port the first one freed
        prefix = f"held{rnd}-{time.time_ns()}"
        p = session_rate(d, prefix)
        try:
            line = held_line(p)
            assert line["held_calls"] == HELD and line["errors"] == 0, (line, p.stderr)
            calls = json.loads(d.rtpxctl("list", "--json").stdout)["calls"]
            ours = [c for c in calls if c["call_id"].startswith(prefix + "-")]
            assert len(ours) == HELD == len(calls)
            assert {c["state"] for c in ours} == {"CALL_STATE_ANSWERED"}
            # One RTP/RTCP pair per leg, two flows per call (rtcp-mux).
            assert gauges(d) == (HELD, 2 * HELD, 2 * HELD)
            metrics = d.http_get("/metrics")
            assert metric(metrics, "rtpx_calls") == HELD
            assert metric(metrics, "rtpx_flows") == 2 * HELD
            assert metric(metrics, "rtpx_media_port_pairs_in_use",
                          '{interface="media0"}') == 2 * HELD
            # Every port is taken: one more call is refused, and changes nothing.
            r = d.rtpxctl("offer", "--call-id", f"{prefix}-extra", "--from-tag", "x",
                          input=sdp(A_IP, 4300), check=False)
            assert r.returncode != 0 and "RESOURCE_EXHAUSTED" in r.stderr, r.stderr
            assert gauges(d) == (HELD, 2 * HELD, 2 * HELD)
        finally:
            p.stdin.close()
            rc = p.wait(60)
        assert rc == 0, p.stderr.read()
        assert gauges(d) == base
        assert json.loads(d.rtpxctl("list", "--json").stdout).get("calls", []) == []
        metrics = d.http_get("/metrics")
        assert metric(metrics, "rtpx_calls") == 0 and metric(metrics, "rtpx_flows") == 0
        assert metric(metrics, "rtpx_media_port_pairs_in_use", '{interface="media0"}') == 0

    # A call on the recycled ports still relays.
    c = Call(d, (A_IP, 4030), (B_IP, 5030))
    try:
        assert PORT_MIN <= c.pa <= PORT_MAX and PORT_MIN <= c.pb <= PORT_MAX
        assert gauges(d) == (1, 4, 2)  # no rtcp-mux: RTP and RTCP flows both ways
        ra, rb, _ = exchange(d, f"{A_IP}:4030", ep(c.ra, c.pa), f"{B_IP}:5030", ep(c.rb, c.pb))
        assert_relayed(ra, rb, ep(c.ra, c.pa), ep(c.rb, c.pb))
    finally:
        c.delete()
    assert gauges(d) == base


# --- 2. timeouts ---

def event_time(e):
    """Seconds since the epoch of an event's RFC 3339 time (nanoseconds cut to micro)."""
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", e["time"])
    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return t.timestamp() + (int((m.group(2) or "0")[:6].ljust(6, "0")) / 1e6)


def test_offer_never_answered_times_out(short):
    d = short
    w = EventWatch(d).start()
    try:
        t0 = time.time()
        call_id = f"unanswered-{time.time_ns()}"
        offer = d.rtpxctl("offer", "--call-id", call_id, "--from-tag", "ta",
                          input=sdp(A_IP, 4400)).stdout
        _, port = media(offer)
        timeout = w.wait(type="TIMEOUT", call_id=call_id)
        assert timeout["reason"] == "EVENT_REASON_OFFER_UNANSWERED"
        assert event_time(timeout) - t0 >= 0.9  # offer_unanswered_s = 1
        w.wait(type="DELETED", reason="OFFER_UNANSWERED", call_id=call_id)
        assert [e["type"][19:] for e in w.of(call_id)] == ["CREATED", "TIMEOUT", "DELETED"]
        assert_gone(d, call_id, [port])
    finally:
        w.close()


def test_no_media_times_out(short):
    d = short
    w = EventWatch(d).start()
    try:
        c = Call(d, (A_IP, 4410), (B_IP, 5410))
        t0 = time.time()
        e = w.wait(type="TIMEOUT", call_id=c.id, timeout=6)
        assert (e["reason"], e["from_tag"], e["to_tag"]) == ("EVENT_REASON_NO_MEDIA", "ta", "tb")
        assert event_time(e) - t0 >= 0.9  # no_media_s = 1
        w.wait(type="DELETED", reason="NO_MEDIA", call_id=c.id)
        assert [x["type"][19:] for x in w.of(c.id)] == ["CREATED", "ANSWERED", "TIMEOUT",
                                                        "DELETED"]
        assert_gone(d, c.id, [c.pa, c.pb])
    finally:
        w.close()


def test_one_sided_media_reported_then_no_media_deletes(short):
    """A talks, B is silent: a one_sided_media timeout is reported and the call stays, media
    still relayed; once A stops too, the no-media timeout deletes it."""
    d = short
    w = EventWatch(d).start()
    try:
        c = Call(d, (A_IP, 4420), (B_IP, 5420))
        b = peer(d, f"{B_IP}:5420", expect=150, timeout=START + 3 + PATIENT)
        a = peer(d, f"{A_IP}:4420", ep(c.ra, c.pa), count=150, interval=20, timeout=3.1,
                 start_delay=START)
        e = w.wait(type="TIMEOUT", call_id=c.id, timeout=6)
        assert (e["reason"], e["from_tag"], e["to_tag"]) == (
            "EVENT_REASON_ONE_SIDED_MEDIA", "ta", "tb")
        q = c.query()  # still there while A talks
        assert q["state"] == "CALL_STATE_ANSWERED"
        assert int(direction(q, "ta")["statistics"]["forwarded"]) > 0
        ra, rb = result(a), result(b)
        assert datas(rb) == ra["sent"]  # relayed all along
        assert [x["type"][19:] for x in w.of(c.id)].count("DELETED") == 0
        w.wait(type="TIMEOUT", reason="NO_MEDIA", call_id=c.id, timeout=6)
        w.wait(type="DELETED", reason="NO_MEDIA", call_id=c.id)
        assert [x["type"][19:] for x in w.of(c.id)] == [
            "CREATED", "ANSWERED", "MEDIA_STARTED", "TIMEOUT", "TIMEOUT", "DELETED"]
        assert_gone(d, c.id, [c.pa, c.pb])
    finally:
        w.close()


def test_delete_delay_keeps_media_then_deletes(short):
    d = short
    w = EventWatch(d).start()
    try:
        c = Call(d, (A_IP, 4430), (B_IP, 5430))
        # A sends once the delete is postponed (START s after it starts, well within 2 s).
        b = peer(d, f"{B_IP}:5430", expect=5, timeout=START + PATIENT)
        a = peer(d, f"{A_IP}:4430", ep(c.ra, c.pa), count=5, interval=5, timeout=0.5,
                 start_delay=START)
        t0 = time.time()
        d.rtpxctl("delete", "--call-id", c.id)  # no --delay: sessions.delete_delay_s = 2
        assert c.query()["state"] == "CALL_STATE_DELETING"
        ra, rb = result(a), result(b)
        assert datas(rb) == ra["sent"], "media stopped before the delete delay ran out"
        e = w.wait(type="DELETED", call_id=c.id, timeout=6)
        assert (e["reason"], e["from_tag"]) == ("EVENT_REASON_DELETE_DELAY", "ta")
        assert event_time(e) - t0 >= 1.9
        assert_gone(d, c.id, [c.pa, c.pb])
    finally:
        w.close()


def test_reoffer_cancels_a_postponed_delete(short):
    d = short
    w = EventWatch(d).start()
    c = Call(d, (A_IP, 4440), (B_IP, 5440))
    try:
        d.rtpxctl("delete", "--call-id", c.id, "--delay", "1")
        assert c.query()["state"] == "CALL_STATE_DELETING"
        c.reoffer("ta", sdp(A_IP, 4440, version=2), sdp(B_IP, 5440, version=2))
        assert c.query()["state"] == "CALL_STATE_ANSWERED"
        # Media keeps the call from the no-media timeout (1 s) while the delete would have run.
        b = peer(d, f"{B_IP}:5440", ep(c.rb, c.pb), count=75, interval=20, expect=75,
                 timeout=1.5 + PATIENT, start_delay=START)
        a = peer(d, f"{A_IP}:4440", ep(c.ra, c.pa), count=75, interval=20, expect=75,
                 timeout=1.5 + PATIENT, start_delay=START)
        ra, rb = result(a), result(b)
        assert_relayed(ra, rb, ep(c.ra, c.pa), ep(c.rb, c.pb))
        assert c.query()["state"] == "CALL_STATE_ANSWERED"
        assert [x["type"][19:] for x in w.of(c.id)].count("DELETED") == 0
    finally:
        w.close()
        c.delete()
