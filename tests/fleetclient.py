#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
# fleetclient.py — the client of tests/fleet.sh, run in its client network
# namespace: `fleetclient.py VIP PORT`, then one command a line on stdin, one
# result line on stdout per command. Every connection goes to VIP:PORT through
# sluiced, whose upstream (tests/echod) echoes everything it receives: first
# the PROXY v2 header sluiced wrote, which must name this very socket as the
# client and VIP:PORT as the destination, then every byte sent, checked byte
# for byte. It connects nowhere else, and every wait has a deadline.
#
#   open TAG N      open N connections as group TAG, each checked by one echo
#   exchange TAG    one more verified echo on every live connection of TAG
#   finish TAG      last echo, half-close, all bytes and then EOF; closes TAG
#   ports TAG       the local ports of TAG's live connections
#   burst N         N short connections (echo, half-close, EOF), 16 at a time
#   quit
#
# Result: "CMD TAG ok=N fail=N ports=P,P,... bad=PORT:why,..." where ports
# are those that passed and bad those that failed (a failed connection is
# closed and leaves its group).
import os
import random
import selectors
import socket
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
DEADLINE = 20.0  # seconds for one command's waits
BURST_BATCH = 16


class Conn:
    def __init__(self, sock, vip, port, rng):
        self.sock = sock
        self.local = sock.getsockname()
        self.port = self.local[1]
        self.vip, self.vport = vip, port
        self.rng = rng
        self.head = b""      # PROXY header bytes received so far
        self.head_ok = False
        self.want = bytearray()  # every byte sent, in order
        self.got = 0         # echoed bytes checked so far
        self.eof = False
        self.why = None      # reason it failed, or None

    def send_chunk(self):
        data = self.rng.randbytes(self.rng.randint(1, 6000))
        self.sock.setblocking(True)
        self.sock.settimeout(DEADLINE)
        self.sock.sendall(data)
        self.want += data

    def check_header(self):
        """The header sluiced sent upstream, echoed back: v2 PROXY, TCP over
        IPv4, source = this socket, destination = the VIP."""
        if len(self.head) < 16:
            return None
        if self.head[:12] != SIG:
            return "no PROXY v2 signature"
        ver_cmd, fam, length = struct.unpack("!BBH", self.head[12:16])
        if len(self.head) < 16 + length:
            return None
        if ver_cmd != 0x21 or fam != 0x11 or length < 12:
            return "PROXY header ver_cmd %#x fam %#x len %d" % (ver_cmd, fam, length)
        src, dst, sport, dport = struct.unpack("!4s4sHH", self.head[16:28])
        src, dst = socket.inet_ntoa(src), socket.inet_ntoa(dst)
        if (src, sport) != (self.local[0], self.local[1]):
            return "PROXY source %s:%d, not %s:%d" % (src, sport, *self.local)
        if (dst, dport) != (self.vip, self.vport):
            return "PROXY destination %s:%d, not %s:%d" % (dst, dport, self.vip, self.vport)
        self.head_ok = True
        rest = self.head[16 + length:]
        self.head = self.head[:16 + length]
        return rest

    def feed(self, data):
        """Bytes from the socket; sets why on any mismatch."""
        if not self.head_ok:
            self.head += data
            r = self.check_header()
            if r is None:
                return
            if isinstance(r, str):
                self.why = r
                return
            data = r
        if not data:
            return
        if self.got + len(data) > len(self.want):
            self.why = "more bytes came back than were sent"
        elif self.want[self.got:self.got + len(data)] != data:
            self.why = "a byte differs after offset %d" % self.got
        else:
            self.got += len(data)

    def done(self, need_eof):
        return self.head_ok and self.got == len(self.want) and (self.eof or not need_eof)


def pump(conns, need_eof):
    """Reads until every connection has all its bytes back (and EOF when
    need_eof), or failed, or the deadline passed."""
    sel = selectors.DefaultSelector()
    pending = [c for c in conns if c.why is None and not c.done(need_eof)]
    for c in pending:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    end = time.monotonic() + DEADLINE
    while pending and time.monotonic() < end:
        for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                c.why = "recv: %s" % (e.strerror or e)
                data = None
            if data == b"":
                if c.done(False):
                    c.eof = True
                else:
                    c.why = "EOF after %d of %d bytes" % (c.got, len(c.want))
            elif data:
                c.feed(data)
            if c.why is not None or c.done(need_eof):
                sel.unregister(c.sock)
                pending.remove(c)
    for c in pending:
        c.why = "no answer within %gs (%d of %d bytes)" % (DEADLINE, c.got, len(c.want))
    sel.close()


def connect(vip, port, rng):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((vip, port))
    except OSError as e:
        s.close()
        return None, "connect: %s" % (e.strerror or e)
    return Conn(s, vip, port, rng), None


def send_all(conns, shut=False):
    for c in conns:
        if c.why is not None:
            continue
        try:
            c.send_chunk()
            if shut:
                c.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            c.why = "send: %s" % (e.strerror or e)


def report(cmd, tag, good, bad):
    print("%s %s ok=%d fail=%d ports=%s bad=%s" % (
        cmd, tag, len(good), len(bad),
        ",".join(str(c.port) for c in good) or "-",
        ",".join("%s:%s" % (p, why.replace(" ", "_")) for p, why in bad) or "-"),
        flush=True)


def settle(groups, tag, conns, need_eof):
    """Splits conns into passed and failed, closes the failed ones (and all
    of them when need_eof) and keeps the passed ones in the group."""
    good = [c for c in conns if c.why is None]
    bad = [(c.port, c.why) for c in conns if c.why is not None]
    for c in conns:
        if c.why is not None or need_eof:
            c.sock.close()
    groups[tag] = [] if need_eof else good
    return good, bad


def main():
    vip, port = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    groups = {}
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        if w[0] == "quit":
            break
        if w[0] == "open" and len(w) == 3:
            conns, bad = [], []
            for _ in range(int(w[2])):
                c, why = connect(vip, port, rng)
                if c is None:
                    bad.append(("-", why))
                else:
                    conns.append(c)
            send_all(conns)
            pump(conns, False)
            old = groups.get(w[1], [])
            good, bad2 = settle(groups, w[1], conns, False)
            groups[w[1]] = old + good
            report("open", w[1], good, bad + bad2)
        elif w[0] in ("exchange", "finish") and len(w) == 2:
            conns = groups.get(w[1], [])
            fin = w[0] == "finish"
            send_all(conns, shut=fin)
            pump(conns, fin)
            good, bad = settle(groups, w[1], conns, fin)
            report(w[0], w[1], good, bad)
        elif w[0] == "ports" and len(w) == 2:
            report("ports", w[1], groups.get(w[1], []), [])
        elif w[0] == "burst" and len(w) == 2:
            good, bad = [], []
            left = int(w[1])
            while left > 0:
                conns = []
                for _ in range(min(left, BURST_BATCH)):
                    c, why = connect(vip, port, rng)
                    if c is None:
                        bad.append(("-", why))
                    else:
                        conns.append(c)
                left -= min(left, BURST_BATCH)
                send_all(conns, shut=True)
                pump(conns, True)
                g, b = settle({}, "", conns, True)
                good += g
                bad += b
            report("burst", "-", good, bad)
        else:
            print("error unknown command: %s" % line.strip(), flush=True)
    for conns in groups.values():
        for c in conns:
            c.sock.close()


if __name__ == "__main__":
    main()
