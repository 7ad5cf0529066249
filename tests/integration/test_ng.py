"""NG, rtpengine's control protocol, over the wire: the same request sequences (shaped as
Kamailio 5.6's rtpengine module sends them) go to a real rtpxd and to a real rtpengine 10.5, and
the replies are compared step by step: result, the keys of the reply, error reasons, whether
there is a warning, the tags a query or delete reports, and the SDP's structure with addresses
and ports normalised (a port becomes "new", or the step that first returned it, so which
replies reuse a port is compared too). Every intended difference is listed in KNOWN_ALWAYS or
KNOWN with a one-line reason; any other difference, or a listed one that went away, fails. Then rtpx-only behaviour: malformed requests change
nothing, and 2 x 10,000 calls of churn leave no call, flow or port behind with flat memory.

rtpengine runs on the host's loopback (userspace forwarding, --delete-delay=0); rtpxd in its
own namespace with NG on a free loopback port. Both are shared by the module."""
import os
import re
import secrets
import shutil
import socket
import sys
from pathlib import Path

import pytest

from rtpx_harness import ROOT, Rtpxd, free_port

sys.path.insert(0, str(ROOT / "bench" / "lib"))
from rtpengine import RtpEngine, bdecode, bencode  # noqa: E402

A_IP, B_IP, C_IP = "192.0.2.10", "192.0.2.20", "192.0.2.30"
PROXY_IP = "192.0.2.5"  # where Kamailio saw the SIP message come from (received-from)
RTPE_IP = "127.0.0.1"  # rtpengine's media address (rtpx's is Rtpxd.RTPX_V4)


# --- NG client ---------------------------------------------------------------------------------

def text(v):
    """A decoded bencode value with bytes turned into str (keys and values)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, dict):
        return {text(k): text(x) for k, x in v.items()}
    if isinstance(v, list):
        return [text(x) for x in v]
    return v


class Ng:
    """One NG client socket. A request unanswered within 1 s is sent again with the same cookie,
    as Kamailio does (the cookie cache makes that safe)."""

    def __init__(self, addr, name, relay_ip):
        host, _, port = addr.rpartition(":")
        self.relay_ip = relay_ip  # the address the daemon writes into SDP
        self.dst = (host, int(port))
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.prefix = secrets.token_hex(3)
        self.seq = 0

    def cookie(self):
        self.seq += 1
        return f"{self.prefix}_{self.seq}"

    def raw(self, payload, cookie=None, tries=5, timeout=1.0):
        """Sends cookie + ' ' + payload; the reply's payload bytes (None: no reply at all)."""
        cookie = (cookie or self.cookie()).encode()
        for _ in range(tries):
            self.sock.sendto(cookie + b" " + payload, self.dst)
            self.sock.settimeout(timeout)
            try:
                while True:
                    msg = self.sock.recv(65536)
                    got, _, body = msg.partition(b" ")
                    if got == cookie:
                        return body
            except socket.timeout:
                continue
        return None

    def __call__(self, req, cookie=None):
        body = self.raw(bencode(req), cookie)
        assert body is not None, f"{self.name}: no reply to {req.get('command')}"
        return text(bdecode(body))


def kam(command, call_id, from_tag, to_tag=None, sdp=None, **extra):
    """A request as Kamailio 5.6's rtpengine module builds it for
    rtpengine_manage("replace-origin replace-session-connection") (its keys, in its order)."""
    d = {"supports": ["load limit"]}
    if sdp is not None:
        d["sdp"] = sdp
    if command in ("offer", "answer"):
        d["replace"] = ["origin", "session-connection"]
    d["call-id"] = call_id
    d["received-from"] = ["IP4", PROXY_IP]
    d["from-tag"] = from_tag
    if to_tag:
        d["to-tag"] = to_tag
    d["command"] = command
    d.update(extra)
    return d


def sdp(user, ip, port, version=1, direction=None):
    """A SIP phone's SDP: PCMU, PCMA, telephone-event, ptime."""
    lines = ["v=0", f"o={user} 1000 {version} IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20"]
    if direction:
        lines.append(f"a={direction}")
    return "\r\n".join(lines) + "\r\n"


SDP_A = sdp("alice", A_IP, 4000)
SDP_B = sdp("bob", B_IP, 5000)
SDP_C = sdp("carol", C_IP, 6000)


# --- the daemons -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rtpx():
    d = Rtpxd(f"{os.getpid() % 1000}n")
    with d.running():
        yield d


@pytest.fixture(scope="module")
def rtpe():
    if shutil.which("rtpengine") is None:
        pytest.fail("rtpengine (Debian rtpengine-daemon) is not installed: tools/test installs it")
    log = Path(f"/tmp/rtpengine-test-ng-{os.getpid()}.log")
    r = RtpEngine(RTPE_IP, f"{RTPE_IP}:{free_port()}", port_min=42000, port_max=42999,
                  log_file=str(log), log_level=6)
    r.start()
    try:
        yield r
    finally:
        rc = r.stop()
        assert rc == 0, f"rtpengine exited with {rc}; see {log}"


@pytest.fixture(scope="module")
def ng_rtpx(rtpx):
    return Ng(rtpx.ng_listen, "rtpx", Rtpxd.RTPX_V4)


@pytest.fixture(scope="module")
def ng_rtpe(rtpe):
    return Ng(rtpe.listen_ng, "rtpengine", RTPE_IP)


@pytest.fixture(scope="module")
def ngs(ng_rtpx, ng_rtpe):
    return {"rtpx": ng_rtpx, "rtpengine": ng_rtpe}


# --- scenarios: the same steps to both ----------------------------------------------------------
# A step is (name, request) or (name, request, cookie_of): cookie_of names an earlier step whose
# cookie is sent again (a retransmission). "{c}" in a request's strings is the scenario's call-id
# (unique per run and daemon).

def offer(sdp_=SDP_A, frm="A", to=None, **kw):
    return kam("offer", "{c}", frm, to, sdp_, **kw)


def answer(sdp_=SDP_B, frm="A", to="B", **kw):
    return kam("answer", "{c}", frm, to, sdp_, **kw)


def delete(frm="A", to=None, **kw):
    return kam("delete", "{c}", frm, to, **kw)


QUERY = {"command": "query", "call-id": "{c}"}
LIST = {"command": "list", "limit": 1000}

SCENARIOS = {
    "offer_answer": [
        ("offer", offer()), ("answer", answer()), ("query", QUERY), ("list", LIST),
        ("delete", delete()), ("query after", QUERY), ("list after", LIST)],
    "retransmit": [
        ("offer", offer()), ("offer again, same cookie", offer(), "offer"),
        ("ping, same cookie", {"command": "ping"}, "offer"),
        ("answer", answer()), ("answer again, same cookie", answer(), "answer"),
        ("delete", delete()), ("delete again, same cookie", delete(), "delete")],
    "repeated_offer": [
        ("offer", offer()), ("offer, new cookie", offer()), ("answer", answer()),
        ("delete", delete())],
    "183_200_same_sdp": [
        ("offer", offer()), ("183", answer()), ("200", answer()), ("delete", delete())],
    "183_200_changed_sdp": [
        ("offer", offer()), ("183", answer()), ("200", answer(sdp("bob", B_IP, 5002, 2))),
        ("delete", delete())],
    "reoffer_caller_hold": [
        ("offer", offer()), ("answer", answer()),
        ("re-offer hold", offer(sdp("alice", A_IP, 4000, 2, "sendonly"), "A", "B")),
        ("answer hold", answer(sdp("bob", B_IP, 5000, 2, "recvonly"))),
        ("re-offer resume", offer(sdp("alice", A_IP, 4000, 3), "A", "B")),
        ("answer resume", answer(sdp("bob", B_IP, 5000, 3))),
        ("delete", delete())],
    "reoffer_callee": [
        ("offer", offer()), ("answer", answer()),
        ("re-offer from B", offer(sdp("bob", B_IP, 5000, 2), "B", "A")),
        ("answer from A", answer(sdp("alice", A_IP, 4000, 2), "B", "A")),
        ("query", QUERY), ("BYE from B", delete("B")), ("query after", QUERY)],
    "reoffer_caller_new_port": [
        ("offer", offer()), ("answer", answer()),
        ("re-offer new port", offer(sdp("alice", A_IP, 4002, 2), "A", "B")),
        ("answer", answer(sdp("bob", B_IP, 5000, 2))), ("delete", delete())],
    "late_offer": [  # INVITE without SDP: the offer is in the 200 OK, the answer in the ACK
        ("offer in 200", offer(SDP_B, "B", "A")), ("answer in ACK", answer(SDP_A, "B", "A")),
        ("query", QUERY), ("BYE from A", delete("A")), ("query after", QUERY)],
    "delete_delay": [
        ("offer", offer()), ("answer", answer()),
        ("delete with delay", delete(**{"delete delay": 30})), ("query", QUERY),
        ("re-offer cancels it", offer(sdp("alice", A_IP, 4000, 2), "A", "B")),
        ("delete", delete(**{"delete delay": 0})), ("query after", QUERY)],
    "kamailio_flags": [  # rtpengine_manage("... ICE=remove RTP/AVP trust-address label=x")
        ("offer", offer(ICE="remove", label="caller", flags=["trust-address"],
                        **{"transport-protocol": "RTP/AVP"})),
        ("answer", answer(ICE="remove", flags=["trust-address"],
                          **{"transport-protocol": "RTP/AVP"})),
        ("delete", delete())],
    "codec_strip": [
        ("offer", offer(codec={"strip": ["PCMA"]})), ("delete", delete())],
    "no_replace": [  # rtpengine_offer() without replace-origin: o= keeps the phone's address
        ("offer", {k: v for k, v in offer().items() if k != "replace"}),
        ("answer", {k: v for k, v in answer().items() if k != "replace"}), ("delete", delete())],
    "two_media_one_rejected": [
        ("offer", offer(SDP_A + "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")),
        ("answer", answer(SDP_B + "m=video 0 RTP/AVP 96\r\n")),
        ("query", QUERY), ("delete", delete())],
    "rtcp_mux": [
        ("offer", offer(SDP_A + "a=rtcp-mux\r\n")), ("answer", answer(SDP_B + "a=rtcp-mux\r\n")),
        ("delete", delete())],
    "odd_sdp": [
        ("offer empty", offer("")), ("delete empty", delete()),
        ("offer without m=", offer("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n"
                                   "c=IN IP4 192.0.2.10\r\nt=0 0\r\n")),
        ("delete without m=", delete())],
    "unknown_flag": [
        ("offer", offer(flags=["no-such-flag"])), ("delete", delete())],
    "fork": [
        ("offer", offer()), ("answer B", answer()), ("answer C", answer(SDP_C, to="C")),
        ("query", QUERY), ("delete C", delete("A", "C")), ("query after C", QUERY),
        ("delete", delete()), ("query after", QUERY)],
    "fork_via_branch": [
        ("offer branch 1", offer(**{"via-branch": "z9hG4bK-1"})),
        ("offer branch 2", offer(**{"via-branch": "z9hG4bK-2"})),
        ("answer B", answer(**{"via-branch": "z9hG4bK-1"})),
        ("answer C", answer(SDP_C, to="C", **{"via-branch": "z9hG4bK-2"})),
        ("delete branch 2", delete(**{"via-branch": "z9hG4bK-2"})),
        ("query", QUERY), ("delete", delete()), ("query after", QUERY)],
    "delete_from_tag": [
        ("offer", offer()), ("answer", answer()), ("delete", delete()), ("query", QUERY)],
    "delete_from_to": [
        ("offer", offer()), ("answer", answer()), ("delete", delete("A", "B")), ("query", QUERY)],
    "delete_callee": [
        ("offer", offer()), ("answer", answer()), ("delete", delete("B")), ("query", QUERY)],
    "delete_via_branch": [
        ("offer", offer(**{"via-branch": "z9hG4bK-1"})),
        ("answer", answer(**{"via-branch": "z9hG4bK-1"})),
        ("delete", delete(**{"via-branch": "z9hG4bK-1"})), ("query", QUERY)],
    "delete_unknown_branch": [  # a BYE's own transaction: no leg has that branch
        ("offer", offer()), ("answer", answer()),
        ("delete", delete(**{"via-branch": "z9hG4bK-bye"})), ("query", QUERY)],
    "delete_call_id_only": [
        ("offer", offer()), ("answer", answer()),
        ("delete", {"command": "delete", "call-id": "{c}"}), ("query", QUERY)],
    "delete_twice": [  # Kamailio deletes twice after a 486 (reply route and failure route)
        ("offer", offer()), ("answer", answer()), ("delete", delete()),
        ("delete again", delete())],
    "delete_unknown_tag": [
        ("offer", offer()), ("answer", answer()), ("delete", delete("X")),
        ("delete to-tag", delete("A", "X")), ("query", QUERY), ("delete", delete())],
    "delete_unknown_call": [
        ("delete", delete()), ("delete fatal", delete(flags=["fatal"]))],
    "unknown_call": [
        ("query", QUERY), ("list", LIST),
        ("answer", answer())],
    "errors": [
        ("unknown command", {"command": "frobnicate", "call-id": "{c}"}),
        ("no command", {"call-id": "{c}"}),
        ("offer without call-id", {k: v for k, v in offer().items() if k != "call-id"}),
        ("offer without from-tag", {k: v for k, v in offer().items() if k != "from-tag"}),
        ("offer without sdp", {k: v for k, v in offer().items() if k != "sdp"}),
        ("query without call-id", {"command": "query"}),
        ("delete without call-id", {"command": "delete", "from-tag": "A"}),
        ("list limit -1", {"command": "list", "limit": -1}),
        ("offer garbage sdp", offer("this is not sdp")),
        ("offer", offer()),
        ("answer without to-tag", {k: v for k, v in answer().items() if k != "to-tag"}),
        ("delete", delete())],
}

# Differences that hold for every step, applied before comparing.
KNOWN_ALWAYS = {
    "sendrecv": "rtpengine writes a=sendrecv into a media section that has no direction "
                "attribute; rtpx passes direction attributes through as the sender wrote them",
    "attribute order": "rtpengine moves a=ptime after its a=rtcp; rtpx keeps the sender's order "
                       "and appends a=rtcp (compared as a set within the media section)",
    "stats keys": "rtpengine's delete/query replies also hold created_us and SSRC; rtpx's do not",
    "untagged": "rtpengine lists the callee of an unanswered offer as a tag '<untagged N>'; rtpx "
                "lists the legs it knows by tag",
    "reason detail": "rtpx may append ': <detail>' to rtpengine's error-reason (never to the "
                     "two Kamailio compares exactly: Parallel session limit reached, Ran out of "
                     "ports)",
}

# Per step: field -> why rtpx differs from rtpengine there on purpose.
BRANCH_KEPT = ("rtpengine keeps an ended branch's monologue (without ports) in the call until "
               "the call ends; rtpx removes the branch's leg")
DELETE_REPORTS = ("a delete that ends one branch: rtpengine reports the ended monologue and its "
                  "peer; rtpx reports the whole call as it was before the delete")
ONE_PORT_SET = ("rtpx shows every branch of a fork the one port set of the offer and sends media "
                "to the latest branch to answer; rtpengine gives each via-branch its own ports")
KNOWN = {
    ("183_200_changed_sdp", "200"): {
        "ports": "rtpengine allocates new caller-facing ports when the callee's media endpoint "
                 "changes (its endpoint map); rtpx keeps the call's ports and relatches"},
    ("fork", "answer C"): {
        "ports": "rtpengine without via-branch gives the second to-tag new ports (last answer "
                 "wins, A is shown a new port); " + ONE_PORT_SET},
    ("fork", "delete C"): {"tags": DELETE_REPORTS},
    ("fork", "query after C"): {"tags": BRANCH_KEPT},
    ("fork", "delete"): {"tags": BRANCH_KEPT},
    ("fork_via_branch", "offer branch 2"): {"ports": ONE_PORT_SET},
    ("fork_via_branch", "answer C"): {"ports": ONE_PORT_SET},
    ("fork_via_branch", "query"): {"tags": BRANCH_KEPT},
    ("fork_via_branch", "delete"): {"tags": BRANCH_KEPT},
    ("reoffer_caller_new_port", "re-offer new port"): {
        "ports": "rtpengine allocates new callee-facing ports when the caller's media endpoint "
                 "changes (its endpoint map); rtpx keeps the call's ports and relatches"},
    ("codec_strip", "offer"): {
        f: "rtpx refuses codec options (strip, offer, transcode, mask …): it passes codecs "
           "through and never ignores an option that would change the wire"
        for f in ("result", "keys", "error-reason", "sdp", "ports")},
    ("codec_strip", "delete"): {
        f: "(the refused offer created no call in rtpx)" for f in ("keys", "tags", "warning")},
    ("rtcp_mux", "offer"): {
        "sdp": "an offer with a=rtcp-mux: rtpengine adds a=rtcp:<port + 1> for an answerer that "
               "declines; rtpx writes no a=rtcp line, port + 1 being RFC 3605's default (and "
               "reserved: rtpx allocates pairs)"},
    ("rtcp_mux", "answer"): {
        "sdp": "an answer accepting rtcp-mux: rtpengine adds a=rtcp:<the RTP port>; rtpx writes "
               "no a=rtcp line (a=rtcp-mux says it all, RFC 5761 section 5.1.3)"},
    ("odd_sdp", "offer empty"): {
        f: "rtpengine takes an offer with an empty SDP (and creates the call); rtpx refuses it "
           "as unparsable (Kamailio never sends one: no body, no offer)"
        for f in ("result", "keys", "error-reason")},
    ("odd_sdp", "delete empty"): {
        f: "(the refused offer created no call in rtpx)" for f in ("keys", "tags", "warning")},
    ("odd_sdp", "offer without m="): {
        f: "an SDP without m= lines: rtpengine answers 'Error rewriting SDP' (yet keeps the "
           "call); rtpx accepts it (RFC 4566 allows it) and creates a call without media"
        for f in ("result", "keys", "error-reason", "sdp", "ports")},
    ("unknown_flag", "offer"): {
        f: "rtpx names a flag it does not know in a warning; rtpengine only logs it"
        for f in ("keys", "warning")},
    ("delete_call_id_only", "delete"): {
        "keys": "a delete without from-tag: rtpengine answers only {result}; rtpx returns the "
                "call's statistics as for any delete",
        "tags": "(the statistics' tags, see keys)"},
}


def normalise_sdp(text_, relay_ip, ports, step):
    """(lines, port names): the relay's own address -> RELAY (a peer's stays as it is), m= ports
    -> PORT, each named "new" or after the step that first returned it (`ports` remembers
    them), a=rtcp:<m-port + 1> -> a=rtcp:RTCP, a=rtcp:<m-port> -> a=rtcp:MUX; within each
    media section the a=ptime / direction / a=rtcp lines sorted after the others."""
    out, syms, section, tail = [], [], [], []

    def flush():
        out.extend(section + sorted(tail))
        section.clear()
        tail.clear()

    mport = None
    for line in text_.split("\r\n"):
        if not line:
            continue
        line = re.sub(rf"(IN IP[46]) {re.escape(relay_ip)}$", r"\1 RELAY", line)
        m = re.match(r"^m=(\S+) (\d+) (.*)$", line)
        if m:
            flush()
            mport = int(m.group(2))
            if mport:
                syms.append(f"as in '{ports[mport]}'" if mport in ports else "new")
                ports.setdefault(mport, step)
            line = f"m={m.group(1)} {'PORT' if mport else '0'} {m.group(3)}"
        r = re.match(r"^a=rtcp:(\d+)(.*)$", line)
        if r:
            p = int(r.group(1))
            line = "a=rtcp:" + ("RTCP" if mport and p == mport + 1 else
                                "MUX" if p == mport else "OTHER") + r.group(2)
        if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive") or \
                line.startswith(("a=ptime:", "a=rtcp:")):
            tail.append(line)
        else:
            section.append(line)
    flush()
    return out, syms


def summary(reply, relay_ip, ports, step, call_ids):
    s = {"result": reply.get("result"), "keys": sorted(reply), "warning": "warning" in reply}
    if "error-reason" in reply:
        s["error-reason"] = reply["error-reason"]
    if "sdp" in reply:
        s["sdp"], s["ports"] = normalise_sdp(reply["sdp"], relay_ip, ports, step)
    if isinstance(reply.get("tags"), dict):
        s["tags"] = sorted(reply["tags"])
    if isinstance(reply.get("calls"), list):  # only this scenario's call, by name
        s["calls"] = sorted("{c}" for c in reply["calls"] if c in call_ids)
    return s


def substitute(v, call_id):
    if isinstance(v, str):
        return v.replace("{c}", call_id)
    if isinstance(v, dict):
        return {k: substitute(x, call_id) for k, x in v.items()}
    if isinstance(v, list):
        return [substitute(x, call_id) for x in v]
    return v


def run(ng, name, steps):
    """Runs a scenario; {step: summary}. Checks on the way that a retransmission's reply is
    byte-identical to the original's."""
    call_id = f"{name}-{secrets.token_hex(4)}@test"
    ports, cookies, raws, out = {}, {}, {}, {}
    for step in steps:
        sname, req = step[0], substitute(step[1], call_id)
        again = step[2] if len(step) > 2 else None
        cookie = cookies[again] if again else ng.cookie()
        cookies[sname] = cookie
        raw = ng.raw(bencode(req), cookie)
        assert raw is not None, f"{ng.name} {name}/{sname}: no reply"
        if again:
            assert raw == raws[again], f"{ng.name} {name}/{sname}: retransmission got another reply"
        raws[sname] = raw
        out[sname] = summary(text(bdecode(raw)), ng.relay_ip, ports, sname, {call_id})
        out[sname]["_sent_sdp"] = req.get("sdp", "")
    return out


def differences(rtpx, rtpe):
    """The fields in which rtpx's summary differs from rtpengine's, after KNOWN_ALWAYS."""
    e = dict(rtpe)  # "attribute order" is in normalise_sdp, for both
    if "sdp" in e and "a=sendrecv" not in e["_sent_sdp"]:  # "sendrecv"
        e["sdp"] = [line for line in e["sdp"] if line != "a=sendrecv"]
    e["keys"] = [k for k in e["keys"] if k not in ("created_us", "SSRC")]  # "stats keys"
    if "tags" in e:  # "untagged"
        e["tags"] = [t for t in e["tags"] if not t.startswith("<untagged")]
    if "error-reason" in e and "error-reason" in rtpx and \
            rtpx["error-reason"].startswith(e["error-reason"] + ": ") and \
            e["error-reason"] not in ("Parallel session limit reached", "Ran out of ports"):
        e["error-reason"] = rtpx["error-reason"]  # "reason detail"
    fields = (set(e) | set(rtpx)) - {"_sent_sdp"}
    return {f for f in fields if e.get(f) != rtpx.get(f)}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_as_rtpengine(ngs, scenario):
    got = {name: run(ng, scenario, SCENARIOS[scenario]) for name, ng in ngs.items()}
    problems = []
    for step, *_ in SCENARIOS[scenario]:
        x, e = got["rtpx"][step], got["rtpengine"][step]
        diff = differences(x, e)
        known = set(KNOWN.get((scenario, step), {}))
        if diff != known:
            problems.append(f"{step}: differs in {sorted(diff)}, known: {sorted(known)}\n"
                            + "".join(f"    {f}: rtpx {x.get(f)!r}\n      rtpengine {e.get(f)!r}\n"
                                      for f in sorted(diff ^ known)))
    assert not problems, f"{scenario}:\n" + "".join(problems)


# --- rtpx-only behaviour over the wire -----------------------------------------------------------

def metrics(d):
    """The call, flow and port-pair gauges from /metrics."""
    text_ = d.http_get("/metrics")
    out = {}
    for name in ("rtpx_calls", "rtpx_flows", "rtpx_media_port_pairs_in_use"):
        m = re.search(rf"^{name}(?:{{[^}}]*}})? (\d+)$", text_, re.M)
        assert m, f"{name} not in /metrics"
        out[name] = int(m.group(1))
    return out


@pytest.mark.parametrize("daemon", ["rtpx", "rtpengine"])
def test_malformed_requests_change_nothing(request, rtpx, daemon):
    """rtpengine too, so that its error strings are checked as rtpx's are."""
    ng = request.getfixturevalue("ng_rtpx" if daemon == "rtpx" else "ng_rtpe")
    call_id = f"malformed-{secrets.token_hex(4)}"
    assert ng(kam("offer", call_id, "A", sdp=SDP_A))["result"] == "ok"
    assert ng(kam("answer", call_id, "A", "B", sdp=SDP_B))["result"] == "ok"

    def state():
        q = ng({"command": "query", "call-id": call_id})
        return (sorted(ng({"command": "list", "limit": 1000})["calls"]), q["result"],
                sorted(q["tags"]), metrics(rtpx) if daemon == "rtpx" else None)

    before = state()
    for payload, reason in [
            (b"", "Invalid data (no payload)"),
            (b"hello", "Invalid NG data format"),
            (b"l7:command4:pinge", "Invalid NG data format"),
            (b"d7:command5:offer7:call-id", "Could not decode bencode dictionary"),
            (bencode(kam("offer", call_id, "A", sdp=SDP_A))[:-40],
             "Could not decode bencode dictionary"),
            (bencode({"command": "frobnicate", "call-id": call_id}), "Unrecognized command"),
            (bencode({"command": "delete", "from-tag": "A"}), "No call-id in message")]:
        reply = text(bdecode(ng.raw(payload)))
        assert reply["result"] == "error", (payload, reply)
        assert reply["error-reason"] == reason or \
            reply["error-reason"].startswith(reason + ": "), (payload, reply)
    # No cookie: no reply at all (there is nobody to address it to); the daemon is still there.
    ng.sock.sendto(b"nocookie", ng.dst)
    assert ng({"command": "ping"})["result"] == "pong"
    assert state() == before
    assert ng(kam("delete", call_id, "A"))["result"] == "ok"


def rss_kib(pid):
    m = re.search(r"^VmRSS:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m.group(1))


def churn(ng, n, tag):
    """n calls set up and torn down; the bytes of the replies (what the cookie cache keeps)."""
    cached = 0
    for i in range(n):
        call_id = f"churn-{tag}-{i}"
        for req in (kam("offer", call_id, "A", sdp=SDP_A),
                    kam("answer", call_id, "A", "B", sdp=SDP_B),
                    kam("delete", call_id, "A")):
            cookie = ng.cookie()
            raw = ng.raw(bencode(req), cookie)
            assert raw is not None and bdecode(raw)[b"result"] == b"ok", (req["command"], raw)
            cached += len(cookie) * 2 + len(raw)
    return cached


CHURN_CALLS = 10_000


def test_churn_leaves_nothing_and_memory_flat(ng_rtpx, rtpx):
    """10,000 calls over NG, twice. The gauges return to zero, and RSS after the second round
    stays within 1 MiB of the first once two things that grow by design are counted:
     - the cookie cache holds every reply for 30-60 s, as rtpengine's does (both rounds fall in
       one cache generation): the replies' bytes plus ~150 B per entry;
     - the flow table's rte_hash hands freed key slots out FIFO, so each new flow touches a slot
       of its preallocated key store (48 B) for the first time until all have been used."""
    ng = ng_rtpx
    zero = {"rtpx_calls": 0, "rtpx_flows": 0, "rtpx_media_port_pairs_in_use": 0}
    churn(ng, CHURN_CALLS, "r1")
    rtpx.wait_for(lambda: metrics(rtpx) == zero, timeout=5, what=f"gauges at zero: {zero}")
    rss1 = rss_kib(rtpx.proc.pid)
    cached = churn(ng, CHURN_CALLS, "r2")
    rtpx.wait_for(lambda: metrics(rtpx) == zero, timeout=5, what=f"gauges at zero: {zero}")
    rss2 = rss_kib(rtpx.proc.pid)
    cache_kib = (cached + 3 * CHURN_CALLS * 150) // 1024
    keys_kib = 4 * CHURN_CALLS * 48 // 1024
    allowed = cache_kib + keys_kib + 1024
    print(f"RSS {rss1} -> {rss2} KiB (+{rss2 - rss1}); allowed {allowed} KiB "
          f"(cache {cache_kib}, flow keys {keys_kib})")
    assert rss2 - rss1 <= allowed, \
        f"RSS grew {rss2 - rss1} KiB over {CHURN_CALLS:,} calls, more than {allowed} KiB"


# --- limits: an rtpxd with room for one call ------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    """max_sessions = 1 and three port pairs: one call fits, with one pair to spare."""
    d = Rtpxd(f"{os.getpid() % 1000}m",
              extra_toml="[sessions]\nmax_sessions = 1\nport_min = 30000\nport_max = 30005\n")
    with d.running():
        yield d


@pytest.fixture
def one_call(small):
    ng = Ng(small.ng_listen, "rtpx small", Rtpxd.RTPX_V4)
    call_id = f"limit-{secrets.token_hex(4)}"
    assert ng(kam("offer", call_id, "A", sdp=SDP_A))["result"] == "ok"
    assert ng(kam("answer", call_id, "A", "B", sdp=SDP_B))["result"] == "ok"
    yield ng, call_id
    assert ng(kam("delete", call_id, "A"))["result"] == "ok"
    small.wait_for(lambda: metrics(small)["rtpx_calls"] == 0, what="the call deleted")


def test_load_limit_over_the_wire(small, one_call):
    """sessions.max_sessions reaches NG as rtpengine's load-limit reply, which makes Kamailio
    try its next node; the call already there goes on."""
    ng, call_id = one_call
    before = metrics(small)
    assert ng(kam("offer", "limit-new", "A", sdp=SDP_A)) == {
        "result": "load limit", "message": "Parallel session limit reached"}
    legacy = kam("offer", "limit-new", "A", sdp=SDP_A)
    del legacy["supports"]
    assert ng(legacy) == {"result": "error", "error-reason": "Parallel session limit reached"}
    assert metrics(small) == before
    assert ng(kam("offer", call_id, "A", "B", sdp=sdp("alice", A_IP, 4000, 2)))["result"] == "ok"
    assert ng(kam("answer", call_id, "A", "B", sdp=sdp("bob", B_IP, 5000, 2)))["result"] == "ok"
    total = ng({"command": "statistics"})["statistics"]["totalstatistics"]
    assert total["rejectedsessions"] >= 2


TWO_MEDIA = SDP_A.replace("o=alice 1000 1", "o=alice 1000 2") + \
    "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"


def test_port_exhaustion_is_exactly_rtpengines_reason(small, one_call):
    """A re-offer that adds a video stream needs two more pairs where one is left: the error
    Kamailio fails over on, and the call unchanged."""
    ng, call_id = one_call
    before = metrics(small), sorted(ng({"command": "query", "call-id": call_id})["tags"])
    reply = ng(kam("offer", call_id, "A", "B", sdp=TWO_MEDIA))
    assert (metrics(small), sorted(ng({"command": "query", "call-id": call_id})["tags"])) == before
    assert reply == {"result": "error", "error-reason": "Ran out of ports"}
