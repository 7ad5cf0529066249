#!/usr/bin/env python3
"""An RTP endpoint for the tests, run inside a network namespace: sends `count` RTP packets
(PT, SSRC, seq/ts increments, deterministic payload) from `bind` to `to` every `interval` ms,
and records everything it receives until `timeout` (or `expect` packets). Prints JSON:
{"sent": [hex...], "received": [{"from": "ip:port", "data": hex}, ...]}."""
import argparse
import json
import select
import socket
import struct
import time


def endpoint(s):
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def rtp_packet(pt, seq, ts, ssrc, size, marker=False):
    payload = bytes((seq + i) & 0xFF for i in range(size))
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--to")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--interval", type=float, default=20.0, help="ms between packets")
    ap.add_argument("--pt", type=int, default=0)
    ap.add_argument("--ssrc", type=lambda x: int(x, 0), default=0x11223344)
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--ts-step", type=int, default=160)
    ap.add_argument("--size", type=int, default=160, help="payload bytes")
    ap.add_argument("--raw", help="send this hex payload instead of RTP (e.g. RTCP)")
    ap.add_argument("--expect", type=int, default=0, help="stop after receiving this many")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--start-delay", type=float, default=0.0)
    a = ap.parse_args()

    host, port = endpoint(a.bind)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    dst = endpoint(a.to) if a.to else None
    sent, received = [], []
    time.sleep(a.start_delay)
    t0 = time.monotonic()
    next_send = t0
    i = 0
    deadline = t0 + a.timeout
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if a.expect and len(received) >= a.expect and i >= a.count:
            break
        if dst and i < a.count and now >= next_send:
            if a.raw:
                pkt = bytes.fromhex(a.raw)
            else:
                pkt = rtp_packet(a.pt, a.seq + i, a.seq * 7 + i * a.ts_step, a.ssrc, a.size, i == 0)
            s.sendto(pkt, dst)
            sent.append(pkt.hex())
            i += 1
            next_send += a.interval / 1000.0
        wait = max(0.0, min(deadline, next_send if (dst and i < a.count) else deadline) - now)
        r, _, _ = select.select([s], [], [], min(wait, 0.05))
        if r:
            data, src = s.recvfrom(65535)
            received.append({"from": f"{src[0]}:{src[1]}", "data": data.hex()})
    print(json.dumps({"sent": sent, "received": received}))


if __name__ == "__main__":
    main()
