#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
# fakedns.py — a tiny DNS server for tests/i_dns.c, on 127.0.0.1 only. It
# answers A and AAAA questions from a zone file the test rewrites between
# queries, and logs every question it gets with the asker's port.
#
#   fakedns.py PORTFILE ZONEFILE LOGFILE
#
# Binds UDP 127.0.0.1 on a port of the kernel's choice and writes it to
# PORTFILE (renamed into place once whole). ZONEFILE, read for every
# question, has lines
#   mode ok|servfail|nxdomain|drop|truncate|garbage
#   NAME A|AAAA|CNAME VALUE TTL
# mode (default ok): answer from the records; SERVFAIL; NXDOMAIN; no answer
# at all (a timeout for the asker); a truncated answer (TC); bytes that are
# not DNS. Answers name the question by a compression pointer and follow
# CNAMEs through the file. Exits on SIGTERM.
import os
import socket
import struct
import sys


def read_zone(path):
    mode, recs = "ok", []
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if not w or w[0].startswith("#"):
                    continue
                if w[0] == "mode":
                    mode = w[1]
                elif len(w) == 4:
                    recs.append((w[0].lower().rstrip("."), w[1].upper(), w[2], int(w[3])))
    except OSError:
        pass
    return mode, recs


def encode_name(name):
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_question(msg):
    off, labels = 12, []
    while msg[off] != 0:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[off + 1:off + 5])
    return ".".join(labels).lower(), qtype, off + 5


def answer(msg, mode, recs):
    qid, flags = struct.unpack("!HH", msg[:4])
    qname, qtype, qend = parse_question(msg)
    question = msg[12:qend]
    rd = flags & 0x0100
    if mode == "servfail":
        return struct.pack("!HHHHHH", qid, 0x8082 | rd, 1, 0, 0, 0) + question
    if mode == "nxdomain":
        return struct.pack("!HHHHHH", qid, 0x8083 | rd, 1, 0, 0, 0) + question
    if mode == "truncate":
        return struct.pack("!HHHHHH", qid, 0x8280 | rd, 1, 0, 0, 0) + question
    rrs, name, seen = [], qname, 0
    want = "A" if qtype == 1 else "AAAA" if qtype == 28 else None
    while seen < 10:
        seen += 1
        owner = b"\xc0\x0c" if name == qname else encode_name(name)
        target = None
        for (n, t, v, ttl) in recs:
            if n != name:
                continue
            if t == want == "A":
                rrs.append(owner + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_pton(socket.AF_INET, v))
            elif t == want == "AAAA":
                rrs.append(owner + struct.pack("!HHIH", 28, 1, ttl, 16) + socket.inet_pton(socket.AF_INET6, v))
            elif t == "CNAME":
                data = encode_name(v)
                rrs.append(owner + struct.pack("!HHIH", 5, 1, ttl, len(data)) + data)
                target = v.lower().rstrip(".")
        if target is None:
            break
        name = target
    return struct.pack("!HHHHHH", qid, 0x8180 | rd, 1, len(rrs), 0, 0) + question + b"".join(rrs)


def main():
    portfile, zone, logfile = sys.argv[1:4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    log = open(logfile, "a", buffering=1)
    while True:
        msg, peer = s.recvfrom(65535)
        try:
            qname, qtype, _ = parse_question(msg)
        except (IndexError, struct.error):
            log.write("malformed from port %d\n" % peer[1])
            continue
        mode, recs = read_zone(zone)
        log.write("query %s %d from port %d mode %s\n" % (qname, qtype, peer[1], mode))
        if mode == "drop":
            continue
        if mode == "garbage":
            s.sendto(b"\x00\x01garbage", peer)
            continue
        s.sendto(answer(msg, mode, recs), peer)


if __name__ == "__main__":
    main()
