"""An interface with several addresses: rtpxd answers ARP/ND/ping for each, calls move on to the
next address when one has no free media ports, and media relays through the second address."""
import os
import re
import time

import pytest
from rtpx_harness import Rtpxd, peer_result, start_peer

A_IP, B_IP = "192.0.2.10", "192.0.2.20"
V4 = ["192.0.2.2", "192.0.2.3", "198.51.100.7"]
V6 = ["2001:db8::2", "2001:db8::3"]


def sdp(ip, port):
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\na=sendrecv\r\n")


def media(sdp_text):
    c = re.search(r"^c=IN IP[46] (\S+)", sdp_text, re.M).group(1)
    return c, int(re.search(r"^m=audio (\d+)", sdp_text, re.M).group(1))


@pytest.fixture(scope="module")
def multi():
    # Two port pairs per address: one single-stream call (both legs on one address) fills it.
    d = Rtpxd(f"ad{os.getpid() % 1000}",
              extra_toml="[sessions]\nport_min = 40000\nport_max = 40003\n")
    d.config = d.config.replace(f'ipv4 = "{d.RTPX_V4}/24"',
                                'ipv4 = ["192.0.2.2/24", "192.0.2.3/24", "198.51.100.7/24"]')
    d.config = d.config.replace(f'ipv6 = "{d.RTPX_V6}/64"', 'ipv6 = "2001:db8::2-2001:db8::3/64"')
    assert "198.51.100.7" in d.config and "2001:db8::2-" in d.config
    try:
        d.start()
        for ip in (A_IP, B_IP):
            d.in_ns("ip", "addr", "add", f"{ip}/24", "dev", d.peer_if)
        d.in_ns("ip", "addr", "add", "198.51.100.1/24", "dev", d.peer_if)
        yield d
        assert d.stop() == 0, d.read_log()
    finally:
        if d.proc and d.proc.poll() is None:
            d.stop()
        d.cleanup()


def test_every_address_answers_ping(multi):
    for ip in V4:
        multi.in_ns("ping", "-c", "1", "-W", "2", ip)
    for ip in V6:
        multi.in_ns("ping", "-6", "-c", "1", "-W", "2", ip)
    neigh = multi.in_ns("ip", "neigh", "show", "dev", multi.peer_if).stdout
    for ip in ("192.0.2.3", "198.51.100.7"):
        assert re.search(rf"^{re.escape(ip)} .*lladdr", neigh, re.M), neigh


def test_calls_spill_to_the_next_address_and_relay_there(multi):
    d = multi
    calls = []
    for n in range(3):
        cid = f"spill-{n}-{time.time_ns()}"
        offer = d.rtpxctl("offer", "--call-id", cid, "--from-tag", "ta",
                          input=sdp(A_IP, 4000 + 2 * n)).stdout
        answer = d.rtpxctl("answer", "--call-id", cid, "--from-tag", "ta", "--to-tag", "tb",
                           input=sdp(B_IP, 5000 + 2 * n)).stdout
        calls.append((cid, media(offer), media(answer)))
    assert [c[1][0] for c in calls] == V4
    assert [c[2][0] for c in calls] == V4
    full = d.rtpxctl("offer", "--call-id", "one-too-many", "--from-tag", "ta",
                     input=sdp(A_IP, 4100), check=False)
    assert full.returncode != 0
    assert "none of its 3 IPv4 addresses" in full.stderr

    # RTP both ways through the second address.
    _, (addr, pb), (_, pa) = calls[1]
    n = 20
    opts = dict(count=n, interval=5, expect=n, timeout=8, start_delay=0.3)
    qb = start_peer(d, f"{B_IP}:5002", f"{addr}:{pb}", **opts)
    qa = start_peer(d, f"{A_IP}:4002", f"{addr}:{pa}", **opts)
    ra, rb = peer_result(qa), peer_result(qb)
    assert [r["data"] for r in rb["received"]] == ra["sent"]
    assert [r["data"] for r in ra["received"]] == rb["sent"]
    assert {r["from"] for r in rb["received"]} == {f"{addr}:{pb}"}

    for cid, _, _ in calls:
        d.rtpxctl("delete", "--call-id", cid)
