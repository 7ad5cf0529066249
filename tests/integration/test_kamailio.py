"""Kamailio's own rtpengine module drives the media relay over NG, as in production: sipp
calls from namespace A through Kamailio to sipp in namespace B (topology in
kamailio_harness.py), the relay rewrites the SDP ("replace-origin replace-session-connection")
and carries G.711 both ways (sipp plays its g711a.pcap, the callee echoes it).

Checked against each relay (RELAYS): 100 calls, per call, RTP only via the relay's address
and every packet relayed both ways; early media (183 with SDP, then 200 with the same SDP);
hold and resume by re-INVITE from either side; BYE from either side deletes the call on the
relay (NG query and list). And, rtpx only: two rtpx nodes in one rtpengine set, one at its
load limit: the calls go to the other."""
from collections import Counter

import pytest

from conftest import _tag
from kamailio_harness import (CALLEE_IP, CALLEE_MEDIA_PORT, CALLER_IP, Capture, KamailioEnv,
                              SIPP_SHARE, AUDIO_PCAP, callee, caller, calls_in, stop_process,
                              wait_for)
from test_sipp import pcap_packets

# The relays under test: rtpengine as the reference, and rtpx over its NG socket.
RELAYS = ["rtpengine", "rtpx"]

PLAYED = pcap_packets(SIPP_SHARE / AUDIO_PCAP)  # 236 RTP packets per call

# A variant of `env` one test asks for by indirect parametrization (so that pytest stops the
# other variants' env first: they all use the same management address): two rtpxd, node 1 with
# room for one call and node 2 as usual, in one rtpengine set.
TWO_NODES = "rtpx-two-nodes"
# no_media_s: node 1's one call carries no media, and must hold its slot for the whole test.
FULL_NODE_TOML = "[sessions]\nmax_sessions = 1\nno_media_s = 3600\n"


@pytest.fixture(scope="module", params=RELAYS)
def env(request, tmp_path_factory):
    two_nodes = request.param == TWO_NODES
    e = KamailioEnv(request.param, _tag(), tmp_path_factory.mktemp(f"kamailio-{request.param}"),
                    relay_options={"other_toml": FULL_NODE_TOML} if two_nodes else None)
    if two_nodes:
        # Kamailio picks a new call's first node by (sum of the Call-ID's bytes & 0xff) % the
        # set's weight sum (docs/rtpengine-ng-notes.md 2.6): with weights 1000 and 1 that is
        # node 1 for every Call-ID, so every call meets the full node first.
        e.ng_socks = [f"{e.relay.other_ng_sock}=1000", f"{e.relay.ng_socks[0]}=1"]
    try:
        e.start()
        yield e
    finally:
        e.stop()


@pytest.fixture
def procs():
    """Processes a test starts (sipp, dumpcap); whatever is still running at the end is
    stopped, failed test or not."""
    started = []
    yield started
    for p in reversed(started):
        stop_process(p, 5)


def start(procs, thing):
    procs.append(thing.proc)
    return thing


def finish(env, uac, uas):
    """Both sipps succeed; Kamailio logged no error."""
    rc = uac.wait()
    assert rc == 0, f"caller sipp exited {rc}\n{uac.logs()}{uas.logs()}{env.diagnostics()}"
    rc = uas.wait()
    assert rc == 0, f"callee sipp exited {rc}\n{uas.logs()}{env.diagnostics()}"
    assert env.kamailio.errors() == [], env.diagnostics()


def no_direct_traffic(packets):
    """Nothing at all went between A and B without the relay or Kamailio in between."""
    direct = Counter((p.src, p.dst) for p in packets
                     if {p.src, p.dst} == {CALLER_IP, CALLEE_IP})
    assert not direct, f"A and B talked directly: {dict(direct)}"


def check_sdp_rewritten(call, relay_ip):
    """The offer and answer each party received name the relay (connection and origin),
    while each party's own SDP named itself."""
    offer_a = call.first(src=CALLER_IP, method="INVITE")
    offer_b = call.first(dst=CALLEE_IP, method="INVITE")
    assert (offer_a.sdp_addr, offer_b.sdp_addr, offer_b.sdp_origin) == \
        (CALLER_IP, relay_ip, relay_ip), call.ladder()
    for answer in call.messages(src=CALLEE_IP, cseq_method="INVITE"):
        if answer.has_sdp:
            assert answer.sdp_addr == CALLEE_IP, call.ladder()
    to_caller = [p for p in call.messages(dst=CALLER_IP, cseq_method="INVITE") if p.has_sdp]
    assert to_caller, call.ladder()
    for answer in to_caller:
        assert (answer.sdp_addr, answer.sdp_origin) == (relay_ip, relay_ip), call.ladder()


def check_relayed_both_ways(call, relay_ip, played=PLAYED):
    """RTP only on the four legs the SDPs set up, and every packet the caller played went
    caller→relay→callee, was echoed, and came back callee→relay→caller: the same (SSRC, seq)
    on each leg, none lost."""
    legs = call.legs(relay_ip)
    seqs = {name: sorted((p.ssrc, p.seq) for p in call.rtp.get(leg, []))
            for name, leg in legs.items()}
    summary = f"call {call.call_id}: legs {legs}, packets " \
              f"{ {k: len(v) for k, v in seqs.items()} }, all flows " \
              f"{ {k: len(v) for k, v in call.rtp.items()} }\n{call.ladder()}"
    assert set(call.rtp) <= set(legs.values()), summary
    assert len(seqs["caller->relay"]) == played, summary
    assert seqs["relay->callee"] == seqs["caller->relay"], summary
    assert seqs["callee->relay"] == seqs["relay->callee"], summary
    assert seqs["relay->caller"] == seqs["callee->relay"], summary


def capture_calls(env, cap):
    cap.stop()
    packets = cap.packets()
    no_direct_traffic(packets)
    calls, stray = calls_in(packets, env.relay.media_ip)
    assert not stray, "RTP no call's SDP explains:\n" + "\n".join(str(p) for p in stray[:20])
    return calls


def test_100_calls_carry_g711_both_ways_through_the_relay(env, procs, tmp_path):
    n = 100
    cap = start(procs, Capture(env.bed, tmp_path / "media.pcapng").start())
    uas = start(procs, callee(env.bed, tmp_path, "call_uas.xml", calls=n, timeout=60,
                              trace_msg=False))
    # 10 new calls a second, at most 60 at once, each 7.3 s (the 7.05 s pcap, then BYE).
    uac = start(procs, caller(env.bed, tmp_path, "call_uac.xml", "load", "-r", "10", "-l",
                              "60", "-d", "7300", calls=n, timeout=60, trace_msg=False))
    finish(env, uac, uas)
    calls = capture_calls(env, cap)

    assert sorted(calls) == sorted(f"load-{i}@{CALLER_IP}" for i in range(1, n + 1))
    relay_ports = Counter()
    for call in calls.values():
        check_sdp_rewritten(call, env.relay.media_ip)
        check_relayed_both_ways(call, env.relay.media_ip)
        legs = call.legs(env.relay.media_ip)
        relay_ports[legs["relay->callee"][1]] += 1
        relay_ports[legs["relay->caller"][1]] += 1
        assert legs["relay->callee"][3] == CALLEE_MEDIA_PORT
    # Every call ended with a BYE through Kamailio: the relay keeps none of them.
    kept = [c for c in calls if env.relay_knows(c)]
    assert not kept and not env.relay_calls() & set(calls), f"the relay still has {kept}"
    print(f"{n} calls, {sum(len(v) for c in calls.values() for v in c.rtp.values())} RTP "
          f"packets relayed and echoed, {len(relay_ports)} distinct relay ports")


def test_early_media_flows_before_and_after_the_200(env, procs, tmp_path):
    cap = start(procs, Capture(env.bed, tmp_path / "media.pcapng").start())
    uas = start(procs, callee(env.bed, tmp_path, "early_uas.xml"))
    uac = start(procs, caller(env.bed, tmp_path, "early_uac.xml", "early", "-d", "5500"))
    finish(env, uac, uas)
    (call,) = capture_calls(env, cap).values()
    relay = env.relay.media_ip

    check_sdp_rewritten(call, relay)
    ringing = call.first(dst=CALLER_IP, status=183)
    answer = call.first(dst=CALLER_IP, status=200, cseq_method="INVITE")
    # The 183's SDP and the 200's SDP point the caller at the same relay address and port.
    assert ringing.has_sdp and answer.has_sdp, call.ladder()
    assert (ringing.sdp_addr, ringing.sdp_port) == (answer.sdp_addr, answer.sdp_port), \
        call.ladder()
    check_relayed_both_ways(call, relay)

    answered = call.first(src=CALLEE_IP, status=200, cseq_method="INVITE").t
    legs = call.legs(relay)
    early = {k: sum(p.t < answered for p in call.rtp[v]) for k, v in legs.items()}
    late = {k: sum(p.t > answer.t for p in call.rtp[v]) for k, v in legs.items()}
    print(f"early media: {early} before the 200, {late} after it\n{call.ladder()}")
    assert all(early.values()), (early, call.ladder())
    assert all(late.values()), (late, call.ladder())


def test_hold_and_resume_from_either_side(env, procs, tmp_path):
    cap = start(procs, Capture(env.bed, tmp_path / "media.pcapng").start())
    uas = start(procs, callee(env.bed, tmp_path, "hold_uas.xml"))
    uac = start(procs, caller(env.bed, tmp_path, "hold_uac.xml", "hold", "-d", "2500"))
    finish(env, uac, uas)
    (call,) = capture_calls(env, cap).values()
    relay = env.relay.media_ip
    check_sdp_rewritten(call, relay)
    legs = call.legs(relay)
    relay_to_caller = legs["relay->caller"][:2]
    relay_to_callee = legs["relay->callee"][:2]

    def offer_answer(offerer, answerer, cseq):
        """The re-INVITE `offerer` sent with CSeq `cseq`, as the other side got it, and the
        200 to it as the offerer got it."""
        return (call.first(method="INVITE", dst=answerer, cseq=cseq),
                call.first(status=200, cseq_method="INVITE", dst=offerer, cseq=cseq))

    # (who offers, its re-INVITE's CSeq, direction offered, direction answered)
    steps = [(CALLER_IP, 2, "sendonly", "recvonly"), (CALLER_IP, 3, "sendrecv", "sendrecv"),
             (CALLEE_IP, 1, "sendonly", "recvonly"), (CALLEE_IP, 2, "sendrecv", "sendrecv")]
    ends = {CALLER_IP: relay_to_caller, CALLEE_IP: relay_to_callee}
    times = []
    for offerer, cseq, offered, answered in steps:
        answerer = CALLEE_IP if offerer == CALLER_IP else CALLER_IP
        invite, ok = offer_answer(offerer, answerer, cseq)
        # The relay passed the direction through, kept the call's ports on both sides, and
        # still names itself to both parties.
        assert invite.direction == offered and ok.direction == answered, call.ladder()
        assert (invite.sdp_addr, invite.sdp_port) == ends[answerer], call.ladder()
        assert (ok.sdp_addr, ok.sdp_port) == ends[offerer], call.ladder()
        times.append(ok.t)

    phases = ["caller holds", "caller resumed", "callee holds", "callee resumed"]
    bounds = times + [call.end]
    flow = {phase: {k: sum(lo < p.t <= hi for p in call.rtp[v]) for k, v in legs.items()}
            for phase, lo, hi in zip(phases, bounds, bounds[1:])}
    print(f"RTP per phase: {flow}\n{call.ladder()}")
    for phase in ("caller resumed", "callee resumed"):
        assert all(flow[phase].values()), (phase, flow)
    assert set(call.rtp) <= set(legs.values()), call.rtp.keys()


@pytest.mark.parametrize("who", ["caller", "callee"])
def test_bye_deletes_the_call_on_the_relay(env, procs, tmp_path, who):
    call_id = f"bye-{who}-1@{CALLER_IP}"
    if who == "caller":
        uas = start(procs, callee(env.bed, tmp_path, "call_uas.xml"))
        uac = start(procs, caller(env.bed, tmp_path, "bye_uac.xml", f"bye-{who}", "-d",
                                  "2000"))
    else:
        uas = start(procs, callee(env.bed, tmp_path, "callee_bye_uas.xml"))
        uac = start(procs, caller(env.bed, tmp_path, "callee_bye_uac.xml", f"bye-{who}"))
    # The call is up for 2 s between the ACK and the BYE.
    wait_for(lambda: env.relay_knows(call_id) or uac.proc.poll() is not None, 10,
             f"the relay to know {call_id}")
    assert env.relay_knows(call_id), f"the relay never had {call_id}\n{uac.logs()}"
    assert call_id in env.relay_calls()
    finish(env, uac, uas)
    # Kamailio deleted the call before it relayed the BYE, so it is gone by now.
    assert not env.relay_knows(call_id), env.diagnostics()
    assert call_id not in env.relay_calls(), env.diagnostics()


# --- two rtpx nodes in one set ----------------------------------------------------------------

def ng_ok(reply):
    assert reply.get(b"result") == b"ok", reply
    return reply


def occupy(env, node, call_id):
    """One call set up directly over NG on `node` (offer and answer, Kamailio-shaped), no
    media: it takes a session slot and nothing else."""
    def sdp(who, ip, port):
        return (f"v=0\r\no={who} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n").encode()
    common = {"call-id": call_id, "from-tag": "occupant-a", "supports": ["load limit"],
              "replace": ["origin", "session-connection"]}
    ng_ok(env.ng({"command": "offer", "sdp": sdp("a", CALLER_IP, 7000), **common}, node=node))
    ng_ok(env.ng({"command": "answer", "to-tag": "occupant-b", "sdp": sdp("b", CALLEE_IP, 7000),
                  **common}, node=node))


def node_calls(env, node):
    return {c.decode() for c in ng_ok(env.ng({"command": "list"}, node=node))[b"calls"]}


def node_totals(env, node):
    stats = ng_ok(env.ng({"command": "statistics"}, node=node))[b"statistics"]
    return {k.decode(): v for k, v in stats[b"totalstatistics"].items()}


@pytest.mark.parametrize("env", [TWO_NODES], indirect=True)
def test_two_rtpx_nodes_one_at_its_load_limit_the_calls_go_to_the_other(env, procs,
                                                                        tmp_path):
    n = 5
    full, free = env.relay.other_ng_sock, env.relay.ng_socks[0]
    full_ip, free_ip = env.relay.other_media_ip, env.relay.media_ip
    occupant = "occupant@full-node"
    occupy(env, full, occupant)
    assert node_calls(env, full) == {occupant}
    rejected_before = node_totals(env, full)["rejectedsessions"]
    managed_before = node_totals(env, free)["managedsessions"]

    cap = start(procs, Capture(env.bed, tmp_path / "media.pcapng").start())
    uas = start(procs, callee(env.bed, tmp_path, "call_uas.xml", calls=n))
    # 5 new calls a second, each 7.3 s (the 7.05 s pcap, then BYE): all up at once for ~6 s.
    uac = start(procs, caller(env.bed, tmp_path, "call_uac.xml", "lb", "-r", str(n), "-d",
                              "7300", calls=n))
    call_ids = {f"lb-{i}@{CALLER_IP}" for i in range(1, n + 1)}
    # During the calls: node 2 holds all of them, node 1 still only its own.
    wait_for(lambda: env.relay_calls() >= call_ids or uac.proc.poll() is not None, 15,
             "node 2 to list every call")
    assert env.relay_calls() >= call_ids, f"node 2 lists {env.relay_calls()}\n{uac.logs()}"
    assert node_calls(env, full) == {occupant}
    finish(env, uac, uas)
    calls = capture_calls(env, cap)

    assert set(calls) == call_ids
    for call in calls.values():
        check_sdp_rewritten(call, free_ip)
        check_relayed_both_ways(call, free_ip)
        assert not [p for p in call.sip if full_ip in (p.sdp_addr, p.sdp_origin)], call.ladder()
    # Node 1 refused each call's offer once ("load limit"), then Kamailio asked node 2, which
    # had every call and, after the BYEs, has none.
    assert node_totals(env, full)["rejectedsessions"] - rejected_before == n
    assert node_totals(env, free)["managedsessions"] - managed_before == n
    assert node_calls(env, full) == {occupant}
    assert not env.relay_calls() & call_ids
    # Kamailio 5.6 says so once per call, at INFO (and without a line end, so the next log
    # line runs on after it).
    moved = f"proxy udp:{full} has reached its load limit (Parallel session limit reached) " \
            "- trying next one"
    log = env.kamailio.log_path.read_text(errors="replace")
    assert log.count(moved) == n, f"{log.count(moved)} times {moved!r}\n{env.diagnostics()}"
