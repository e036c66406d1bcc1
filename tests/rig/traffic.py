#!/usr/bin/env python3
"""Traffic for the end-to-end tests, run inside rig namespaces (stdlib only).

tcp-recv HOST PORT              accept one connection, read to EOF, print "<bytes> <sha256>"
tcp-send HOST PORT MIB          send MIB MiB of seeded pseudo-random data, print the same
tcp-recv-progress HOST PORT FILE  tcp-recv that also keeps the byte count so far in FILE
tcp-send-paced HOST PORT MIB KIBPS  tcp-send at most KIBPS KiB/s (so faults land mid-transfer)
udp-recv HOST PORT COUNT SECS   count datagrams until COUNT or SECS, print the count
udp-send HOST PORT COUNT        send COUNT datagrams, 20 ms apart
udp-echo HOST PORT SECS         answer every datagram with its own bytes for SECS seconds
socks5-udp PROXY PPORT HOST PORT  UDP ASSOCIATE through a SOCKS5 proxy, send one datagram to
                                HOST:PORT, print the reply (retried while nothing answers)
mcast-recv GROUP PORT LOCAL SECS  join GROUP on the interface of LOCAL, count datagrams
mcast-send GROUP PORT LOCAL COUNT send COUNT datagrams to GROUP out of LOCAL's interface
inject KIND SRC DST             write one crafted packet that the kernel routes into the TUN:
                                bad-udp-checksum, ipv4-fragment, ipv6-unknown-ext,
                                ipv6-hop-by-hop (v4 or v6 addresses as the kind needs)
"""
import hashlib
import os
import random
import socket
import struct
import sys
import time


def block_stream(mib):
    rng = random.Random(1234)
    block = bytes(rng.getrandbits(8) for _ in range(1 << 16))
    for i in range(mib * 16):
        # Vary each 64 KiB block so reordering bugs cannot hide behind repetition.
        yield struct.pack("!I", i) + block[4:]


def tcp_recv(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(1)
    srv.settimeout(60)
    conn, _ = srv.accept()
    conn.settimeout(120)
    digest, total = hashlib.sha256(), 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        digest.update(data)
        total += len(data)
    print(total, digest.hexdigest())


def tcp_recv_progress(host, port, progress_file):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(1)
    srv.settimeout(60)
    write_progress(progress_file, 0)
    conn, _ = srv.accept()
    conn.settimeout(120)
    digest, total, reported = hashlib.sha256(), 0, 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        digest.update(data)
        total += len(data)
        if total - reported >= 1 << 14:
            write_progress(progress_file, total)
            reported = total
    write_progress(progress_file, total)
    print(total, digest.hexdigest())


def write_progress(path, total):
    # Replace atomically so a reader never sees a half-written number.
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % total)
    os.replace(path + ".tmp", path)


def tcp_send_paced(host, port, mib, kib_per_s):
    conn = connect_retry(host, port)
    conn.settimeout(120)
    digest, total = hashlib.sha256(), 0
    start, rate = time.monotonic(), int(kib_per_s) * 1024
    for chunk in block_stream(int(mib)):
        for i in range(0, len(chunk), 1 << 14):
            piece = chunk[i:i + (1 << 14)]
            # Pacing, not waiting for a condition: the stream keeps to the asked rate.
            ahead = (total + len(piece)) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            conn.sendall(piece)
            digest.update(piece)
            total += len(piece)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)
    conn.close()
    print(total, digest.hexdigest())


def connect_retry(host, port, deadline_s=20):
    deadline = time.time() + deadline_s
    while True:
        try:
            return socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def tcp_send(host, port, mib):
    conn = connect_retry(host, port)
    conn.settimeout(120)
    digest, total = hashlib.sha256(), 0
    for chunk in block_stream(int(mib)):
        conn.sendall(chunk)
        digest.update(chunk)
        total += len(chunk)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)
    conn.close()
    print(total, digest.hexdigest())


def udp_recv(host, port, count, secs):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    return count_datagrams(s, int(count), float(secs))


def count_datagrams(s, count, secs):
    deadline = time.time() + secs
    got = 0
    print("ready", flush=True)
    while got < count and time.time() < deadline:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            data = s.recv(65535)
        except socket.timeout:
            break
        if data.startswith(b"ztrs-test"):
            got += 1
    print(got, flush=True)


def udp_send(host, port, count):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    for i in range(int(count)):
        s.sendto(b"ztrs-test %d" % i, (host, int(port)))
        time.sleep(0.02)


def udp_echo(host, port, secs):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    print("ready", flush=True)
    end = time.time() + float(secs)
    while time.time() < end:
        s.settimeout(max(0.1, end - time.time()))
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            break
        s.sendto(data, peer)


def socks5_udp(proxy, pport, host, port):
    ctl = socket.create_connection((proxy, int(pport)), timeout=10)
    ctl.sendall(b"\x05\x01\x00")
    assert ctl.recv(2) == b"\x05\x00", "no-auth refused"
    ctl.sendall(b"\x05\x03\x00\x01" + bytes(4) + bytes(2))
    reply = ctl.recv(10)
    assert reply[:2] == b"\x05\x00" and reply[3] == 1, "UDP ASSOCIATE failed: %r" % reply
    relay = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.5)
    header = b"\x00\x00\x00\x01" + socket.inet_aton(host) + struct.pack("!H", int(port))
    for _ in range(40):
        u.sendto(header + b"ztrs socks5 udp", relay)
        try:
            data, _ = u.recvfrom(65535)
        except socket.timeout:
            continue
        print(data[10:].decode())
        return
    sys.exit("no UDP reply through the SOCKS5 relay")


def mcast_recv(group, port, local, secs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    mreq = socket.inet_aton(group) + socket.inet_aton(local)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    count_datagrams(s, 1 << 30, float(secs))


def mcast_send(group, port, local, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
    for i in range(int(count)):
        s.sendto(b"ztrs-test %d" % i, (group, int(port)))
        time.sleep(0.02)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header(src, dst, proto, payload_len, flags_frag=0):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0x1234, flags_frag,
                         64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:]


def inject(kind, src, dst):
    if kind in ("bad-udp-checksum", "ipv4-fragment"):
        udp = struct.pack("!HHHH", 40000, 9, 8 + 16, 0xdead) + b"ztrs-test inject"
        flags = 0x2000 if kind == "ipv4-fragment" else 0  # MF: a first fragment
        packet = ipv4_header(src, dst, 17, len(udp), flags) + udp
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        s.sendto(packet, (dst, 0))
        return
    # IPv6 raw with our own header (IPPROTO_RAW implies IPV6_HDRINCL on Linux).
    payload = b"ztrs-test inject".ljust(16, b"\0")
    if kind == "ipv6-unknown-ext":
        ext = struct.pack("!BB6s", 59, 0, b"\0" * 6)  # an experimental header (253)
        first = 253
    elif kind == "ipv6-hop-by-hop":
        ext = struct.pack("!BB6s", 59, 0, b"\x01\x04\0\0\0\0")  # PadN option
        first = 0
    else:
        raise SystemExit("unknown kind " + kind)
    body = ext + payload
    header = struct.pack("!IHBB16s16s", 6 << 28, len(body), first, 64,
                         socket.inet_pton(socket.AF_INET6, src),
                         socket.inet_pton(socket.AF_INET6, dst))
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(header + body, (dst, 0))


COMMANDS = {
    "tcp-recv": tcp_recv, "tcp-send": tcp_send, "tcp-recv-progress": tcp_recv_progress,
    "tcp-send-paced": tcp_send_paced, "udp-recv": udp_recv, "udp-send": udp_send,
    "udp-echo": udp_echo, "socks5-udp": socks5_udp,
    "mcast-recv": mcast_recv, "mcast-send": mcast_send, "inject": inject,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
