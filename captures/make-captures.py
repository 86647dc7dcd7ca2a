#!/usr/bin/env python3
"""Writes the sample captures in this folder with scapy — a packet library independent of
greguard — together with what greguard must say about every frame (`*.expected.csv`, in the format
of `greguard replay --verdicts`; a `*` matches anything, used for fuzzed frames).

    pip install scapy && python3 captures/make-captures.py

The captures are committed; the replay tests read them, so CI does not need scapy. Each capture
belongs to one example policy in config/examples/ (named in the CSV's first comment line).
"""

import os
import random

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, GRE, IPv6,
                       IPv6ExtHdrHopByHop, IPv6ExtHdrFragment, Raw, wrpcap, fuzz)
from scapy.layers.inet6 import ICMPv6EchoRequest
from scapy.layers.l2 import GRE_PPTP
from scapy.utils import PcapNgWriter

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = random.Random(2017)

BOX_MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


class Capture:
    """Frames with their expected (verdict, reason, tunnel) and 1 ms apart timestamps."""

    def __init__(self, name, policy, start=1483228800.0):  # 2017-01-01T00:00:00Z
        self.name, self.policy, self.t = name, policy, start
        self.frames, self.expected = [], []

    def add(self, frame, verdict, reason, tunnel=""):
        if isinstance(frame, bytes):
            frame = Ether(frame)
        frame.time = self.t
        self.t += 0.001
        self.frames.append(frame)
        self.expected.append((verdict, reason, tunnel))

    def write(self, pcapng=False):
        ext = "pcapng" if pcapng else "pcap"
        path = os.path.join(HERE, f"{self.name}.{ext}")
        if pcapng:
            with PcapNgWriter(path) as w:
                for f in self.frames:
                    w.write(f)
        else:
            wrpcap(path, self.frames)
        with open(os.path.join(HERE, f"{self.name}.expected.csv"), "w") as out:
            out.write(f"# policy: {self.policy}\n")
            out.write("frame,port,verdict,reason,tunnel\n")
            # The tests replay every capture --from outside: each frame arrived on that port.
            for i, (v, r, t) in enumerate(self.expected, 1):
                out.write(f"{i},outside,{v},{r},{t}\n")
        print(f"{path}: {len(self.frames)} frames")


def eth():
    return Ether(**BOX_MACS)


def rand_ip():
    """A random unicast, non-bogon IPv4 address: a spoofed source of the backscatter wave."""
    while True:
        a = RNG.randrange(1, 224)
        if a != 127:
            return f"{a}.{RNG.randrange(256)}.{RNG.randrange(256)}.{RNG.randrange(1, 255)}"


def inner_udp(size=0, src="10.1.0.5", dst="10.2.0.9"):
    return IP(src=src, dst=dst) / UDP(sport=RNG.randrange(1024, 65535), dport=53) / Raw(b"\x00" * size)


def small_site():
    """config/examples/small-site.toml: four keyed branch tunnels and the 2016-17 storm."""
    c = Capture("backscatter-mix", "config/examples/small-site.toml")
    berlin = dict(src="203.0.113.7", dst="198.51.100.10")
    hamburg = dict(src="203.0.113.20", dst="198.51.100.10")
    munich = dict(src="192.0.2.33", dst="198.51.100.10")
    vienna = dict(src="2001:db8:100::7", dst="2001:db8:ffff::10")
    for i in range(60):
        kind = i % 6
        if kind == 0:
            c.add(eth() / IP(**berlin) / GRE(key_present=1, key=1001) / inner_udp(RNG.randrange(0, 1200)),
                  "forward", "tunnel", "berlin-branch")
        elif kind == 1:
            c.add(eth() / IP(**berlin) / GRE(key_present=1, key=1001, proto=0x86DD)
                  / IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(),
                  "forward", "tunnel", "berlin-branch")
        elif kind == 2:
            c.add(eth() / IP(**hamburg) / GRE(chksum_present=1, key_present=1, key=1002)
                  / IP(src="10.3.0.1", dst="10.2.0.1") / ICMP() / Raw(b"ping" * 10),
                  "forward", "tunnel", "hamburg-branch")
        elif kind == 3:
            c.add(eth() / IP(**munich) / GRE(key_present=1, key=1003) / IP(src="10.4.0.1", dst="10.2.0.1")
                  / TCP(dport=443, flags="S"), "forward", "tunnel", "munich-branch")
        elif kind == 4:
            c.add(eth() / IPv6(**vienna) / GRE(key_present=1, key=2001) / inner_udp(100),
                  "forward", "tunnel", "vienna-v6")
        else:
            c.add(eth() / Dot1Q(vlan=100) / IP(**berlin) / GRE(key_present=1, key=1001) / inner_udp(30),
                  "forward", "tunnel", "berlin-branch")
    # Tunnels seen on tagged and QinQ links.
    c.add(Ether(type=0x88A8, **BOX_MACS) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(**berlin)
          / GRE(key_present=1, key=1001) / inner_udp(10), "forward", "tunnel", "berlin-branch")
    # IPv6 outer with a hop-by-hop header in front of GRE.
    c.add(eth() / IPv6(**vienna) / IPv6ExtHdrHopByHop() / GRE(key_present=1, key=2001) / inner_udp(5),
          "forward", "tunnel", "vienna-v6")
    # Keepalive request from Berlin: inner IPv4 carrying GRE protocol 0 (not nested GRE).
    c.add(eth() / IP(**berlin) / GRE(key_present=1, key=1001)
          / IP(src="198.51.100.10", dst="203.0.113.7") / GRE(proto=0), "forward", "tunnel", "berlin-branch")

    # The storm: well-formed GRE from random spoofed sources, IPv4/UDP inside, 66 and 578 bytes.
    for i in range(80):
        size = 0 if i % 2 == 0 else 512
        f = eth() / IP(src=rand_ip(), dst="198.51.100.10") / GRE() / inner_udp(size, src=rand_ip(), dst=rand_ip())
        assert len(f) in (66, 578), len(f)
        c.add(f, "drop", "unknown_tunnel")
    # Broken headers and payloads, also from spoofed sources.
    spoof = lambda: IP(src=rand_ip(), dst="198.51.100.10")  # noqa: E731
    for v in range(2, 8):
        c.add(eth() / spoof() / GRE(version=v) / inner_udp(), "drop", "bad_version")
    c.add(eth() / spoof() / GRE(routing_present=1) / inner_udp(), "drop", "bad_flags")
    c.add(eth() / spoof() / GRE(strict_route_source=1) / inner_udp(), "drop", "bad_flags")
    c.add(eth() / spoof() / GRE(recursion_control=4) / inner_udp(), "drop", "bad_flags")
    c.add(eth() / spoof() / GRE(recursion_control=1) / inner_udp(), "drop", "reserved_bits")
    c.add(eth() / spoof() / GRE(flags=1) / inner_udp(), "drop", "reserved_bits")
    c.add(eth() / IP(**hamburg) / GRE(chksum_present=1, chksum=0x1234, key_present=1, key=1002) / inner_udp(),
          "drop", "bad_checksum")
    for _ in range(10):
        junk = bytes([RNG.choice([0x00, 0x15, 0x60, 0xFF])]) + RNG.randbytes(RNG.randrange(8, 500))
        c.add(eth() / spoof() / GRE(proto=0x0800) / Raw(junk), "drop", "bad_inner")
    c.add(eth() / spoof() / GRE(proto=0x6558) / Raw(b"\x01" * 10), "drop", "bad_inner")
    whole = bytes(eth() / IP(**berlin) / GRE(key_present=1, key=1001) / inner_udp(40))
    for cut in (20, 36, 40, 50, len(whole) - 1):
        c.add(whole[:cut], "drop", "truncated")
    # Sources that can never send: outer and inner bogons.
    for src in ("127.0.0.9", "0.1.2.3", "224.0.0.5", "255.255.255.255"):
        c.add(eth() / IP(src=src, dst="198.51.100.10") / GRE() / inner_udp(), "drop", "bogon")
    c.add(eth() / IP(**berlin) / GRE(key_present=1, key=1001) / inner_udp(src="127.0.0.1"), "drop", "bogon")
    # Fragments of GRE are not reassembled; those of a tunnel's addresses are forwarded within
    # its policer (fragments = "tunnel", the default), the first one after its header checks.
    c.add(eth() / IP(flags="MF", **berlin) / GRE(key_present=1, key=1001) / inner_udp(),
          "forward", "fragment", "berlin-branch")
    c.add(eth() / IP(frag=100, proto=47, **berlin) / Raw(b"\x00" * 64),
          "forward", "fragment", "berlin-branch")
    # Tunnel rules.
    c.add(eth() / IP(**berlin) / GRE(key_present=1, key=999) / inner_udp(), "drop", "key_mismatch", "berlin-branch")
    c.add(eth() / IP(**berlin) / GRE() / inner_udp(), "drop", "key_mismatch", "berlin-branch")
    c.add(eth() / IP(**munich) / GRE(key_present=1, key=1003, proto=0x86DD)
          / IPv6(src="fd00::4", dst="fd00::2") / ICMPv6EchoRequest(),
          "drop", "protocol_denied", "munich-branch")
    c.add(eth() / IP(**berlin) / GRE(key_present=1, key=1001) / IP(src="10.1.0.1", dst="10.9.9.9")
          / GRE() / inner_udp(), "drop", "nested_gre", "berlin-branch")
    c.add(eth() / IP(**hamburg) / GRE(key_present=1, key=1002) / inner_udp(), "drop", "checksum_policy", "hamburg-branch")
    c.add(eth() / IP(**munich) / GRE(key_present=1, key=1003, seqnum_present=1, sequence_number=7) / inner_udp(),
          "drop", "sequence_policy", "munich-branch")
    # Everything that is not GRE passes untouched.
    c.add(eth() / ARP(psrc="198.51.100.1", pdst="198.51.100.10"), "forward", "non_gre")
    c.add(eth() / IP(**berlin) / ICMP(), "forward", "non_gre")
    c.add(eth() / IP(**berlin) / TCP(dport=22, flags="S"), "forward", "non_gre")
    c.add(eth() / IP(proto=50, **berlin) / Raw(b"\x00\x00\x10\x01" + b"\x00" * 60), "forward", "non_gre")
    c.add(eth() / IP(**berlin) / UDP(sport=500, dport=500) / Raw(b"\x00" * 28), "forward", "non_gre")
    c.add(eth() / IPv6(src="2001:db8:100::7", dst="ff02::1") / ICMPv6EchoRequest(), "forward", "non_gre")
    # Shuffle so the storm interleaves with the tunnels, as on the wire.
    order = list(range(len(c.frames)))
    RNG.shuffle(order)
    c.frames = [c.frames[i] for i in order]
    c.expected = [c.expected[i] for i in order]
    for i, f in enumerate(c.frames):
        f.time = 1483228800.0 + i * 0.001
    c.write()


def pptp():
    """config/examples/pptp-concentrator.toml: PPTP (enhanced GRE, version 1), as pcapng."""
    c = Capture("pptp", "config/examples/pptp-concentrator.toml")
    client = dict(src="192.0.2.44", dst="198.51.100.20")
    mobile = dict(src="203.0.113.9", dst="198.51.100.20")
    lcp = Raw(b"\xff\x03\xc0\x21\x01\x01\x00\x04")
    ip_in_ppp = Raw(b"\x00\x21" + bytes(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP()))
    for i in range(20):
        c.add(eth() / IP(**client) / GRE_PPTP(seqnum_present=1, seqence_number=i, call_id=0x4001) / ip_in_ppp,
              "forward", "tunnel", "pptp-office-pool")
        c.add(eth() / IP(**mobile) / GRE_PPTP(seqnum_present=1, acknum_present=1, seqence_number=i,
                                              ack_number=i, call_id=7) / lcp,
              "forward", "tunnel", "pptp-mobile-pool")
    c.add(eth() / IP(**client) / GRE_PPTP(acknum_present=1, ack_number=19, call_id=0x4001),
          "forward", "tunnel", "pptp-office-pool")
    # invalid_gre = "rate-limit" in this policy: within the shared burst of 20, invalid GRE is
    # forwarded and keeps its reason.
    c.add(eth() / IP(**client) / GRE_PPTP(key_present=0, seqnum_present=1, call_id=1) / lcp, "forward", "bad_flags")
    c.add(eth() / IP(**client) / GRE_PPTP(chksum_present=1, seqnum_present=1, call_id=1) / lcp, "forward", "bad_flags")
    c.add(eth() / IP(**client) / GRE_PPTP(proto=0x0800, seqnum_present=1, call_id=1) / lcp, "forward", "bad_flags")
    c.add(eth() / IP(**client) / GRE_PPTP(seqnum_present=1, payload_len=500, call_id=1) / lcp, "forward", "truncated")
    c.add(eth() / IP(**client) / GRE_PPTP(seqnum_present=1, call_id=1) / Raw(b"\xff\x03\xc0\x20"), "forward", "bad_inner")
    c.add(eth() / IP(**client) / GRE_PPTP(seqnum_present=1, call_id=1), "forward", "bad_inner")
    c.add(eth() / IP(src="198.18.0.1", dst="198.51.100.20") / GRE_PPTP(seqnum_present=1, call_id=1) / lcp,
          "drop", "unknown_tunnel")
    c.add(eth() / IP(**client) / GRE(key_present=1, key=5) / inner_udp(), "drop", "protocol_denied", "pptp-office-pool")
    c.add(eth() / IP(**client) / TCP(dport=1723, flags="S"), "forward", "non_gre")
    c.write(pcapng=True)


def dmvpn():
    """config/examples/dmvpn-hub.toml: NHRP, keepalives, ERSPAN that is not allowed, fuzzed GRE."""
    c = Capture("dmvpn-hub", "config/examples/dmvpn-hub.toml")
    spoke = dict(src="203.0.113.45", dst="198.51.100.1")
    dc = dict(src="203.0.113.200", dst="198.51.100.1")
    # NHRP registration request: the 20-byte fixed header of RFC 2332 (op.version 1, type 3).
    nhrp = bytearray(48)
    nhrp[0:2] = b"\x00\x01"; nhrp[2:4] = b"\x08\x00"; nhrp[9] = 255
    nhrp[10:12] = len(nhrp).to_bytes(2, "big"); nhrp[16] = 1; nhrp[17] = 3
    for _ in range(5):
        c.add(eth() / IP(**spoke) / GRE(key_present=1, key=100, proto=0x2001) / Raw(bytes(nhrp)),
              "forward", "tunnel", "dmvpn-spokes")
        c.add(eth() / IP(**dc) / GRE(key_present=1, key=100) / inner_udp(64),
              "forward", "tunnel", "dmvpn-datacenter-spoke")
    broken = bytearray(nhrp); broken[16] = 9
    c.add(eth() / IP(**spoke) / GRE(key_present=1, key=100, proto=0x2001) / Raw(bytes(broken)), "drop", "bad_inner")
    # Keepalive request (inner IPv4/GRE protocol 0) and the bare reply (GRE protocol 0).
    c.add(eth() / IP(**spoke) / GRE(key_present=1, key=100) / IP(src="198.51.100.1", dst="203.0.113.45") / GRE(proto=0),
          "forward", "tunnel", "dmvpn-spokes")
    c.add(eth() / IP(**spoke) / GRE(key_present=1, key=100, proto=0), "forward", "tunnel", "dmvpn-spokes")
    # ERSPAN type II from a spoke: valid GRE, but the tunnel does not carry it.
    erspan2 = bytes([0x10, 0x01, 0x00, 0x01, 0, 0, 0, 0]) + bytes(eth() / IP() / ICMP())
    c.add(eth() / IP(**spoke) / GRE(key_present=1, key=100, seqnum_present=1, proto=0x88BE) / Raw(erspan2),
          "drop", "protocol_denied", "dmvpn-spokes")
    c.add(eth() / IP(**spoke) / GRE(key_present=1, key=7) / inner_udp(), "drop", "key_mismatch", "dmvpn-spokes")
    c.add(eth() / IP(src="192.0.2.1", dst="198.51.100.1") / GRE(key_present=1, key=100) / inner_udp(), "drop", "unknown_tunnel")
    # Fuzzed GRE headers from a spoke: any reason may come out, but never a crash.
    # Half keep version 0 and protocol IPv4 (scapy's fuzz() leaves fields that are set alone), so
    # the flags, optional fields and payload get exercised, not only the version check.
    for i in range(40):
        gre = GRE(version=0, proto=0x0800) if i % 2 else GRE()
        f = eth() / IP(**spoke) / fuzz(gre) / Raw(RNG.randbytes(RNG.randrange(0, 80)))
        c.add(bytes(f), "*", "*", "*")
    c.write()


if __name__ == "__main__":
    random.seed(2017)
    small_site()
    pptp()
    dmvpn()
