"""Broker probe used by run.sh: waits until a broker answers ApiVersions, then reports whether
the consumer-group APIs are advertised.

Owns one raw ApiVersions v0 exchange (no client library, so it works before install.sh and
against any Kafka-compatible broker). Never sends anything else.
Output (stdout), shell-sourceable: `BROKER_APIS=<comma-separated api keys>`, `GROUP_APIS=1|0`
and `GROUP_APIS_REASON=...`.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

API_NAMES = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
             12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup"}
MAX_RESPONSE_BYTES = 1 << 20


def api_versions(host: str, port: int, timeout_s: float) -> dict[int, tuple[int, int]]:
    client_id = b"runnel-client-probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        if size < 10 or size > MAX_RESPONSE_BYTES:
            raise ValueError(f"bad ApiVersions response size {size}")
        data = recv_exact(s, size)
    corr, err, count = struct.unpack(">ihi", data[:10])
    if corr != 1:
        raise ValueError(f"correlation id {corr}, want 1")
    if err != 0:
        raise ValueError(f"ApiVersions error code {err}")
    if count < 0 or 10 + 6 * count > len(data):
        raise ValueError(f"bad api_keys count {count}")
    out = {}
    for i in range(count):
        key, lo, hi = struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])
        out[key] = (lo, hi)
    return out


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return buf


def main() -> int:
    host, port_s = sys.argv[1].rsplit(":", 1)
    deadline = time.monotonic() + float(sys.argv[2] if len(sys.argv) > 2 else 60)
    last = None
    while True:
        try:
            apis = api_versions(host, int(port_s), 2.0)
            break
        except (OSError, ValueError) as e:
            last = e
            if time.monotonic() > deadline:
                print(f"probe: broker at {sys.argv[1]} did not answer ApiVersions: {last}",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
    print(f"BROKER_APIS={','.join(str(k) for k in sorted(apis))}")
    missing = [name for key, name in API_NAMES.items() if key not in apis]
    if missing:
        print("GROUP_APIS=0")
        print(f"GROUP_APIS_REASON='broker does not advertise {' '.join(missing)}'")
    else:
        print("GROUP_APIS=1")
        print("GROUP_APIS_REASON=''")
    return 0


if __name__ == "__main__":
    sys.exit(main())
