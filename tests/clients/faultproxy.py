"""Fault-injecting Kafka TCP proxy for the client scenarios (issue 4 item 1: retried requests).

Owns: accepting client connections on one address, forwarding every frame unchanged to one
upstream broker listener, and, for a chosen subset of Produce requests (api key 0), either
throwing the broker's response away and closing the connection (`drop`: the write happened but
the client never learns it) or holding the response past the client's request timeout
(`delay`). Either way the client must retry a request the broker already applied, which is what
idempotent producers exist for.

Never: parses or rewrites anything but the 4-byte size prefix, the request header's api key and
correlation id and the response's correlation id; never changes a byte it forwards; never
allocates from a frame size above MAX_FRAME_BYTES (the connection is closed instead).

The proxy only works if clients connect through it for every request, so the broker must
advertise the proxy's address on the listener the proxy forwards to (run.sh starts the broker
with a second listener, PROXIED, advertised at the proxy's port; Kafka answers Metadata and
FindCoordinator with the endpoint of the listener the request came in on).

Threads, not asyncio: librdkafka runs its own native threads, so a few Python threads per
connection are plenty and keep the proxy independent of any event loop in the scenario.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

PRODUCE = 0
MAX_FRAME_BYTES = 100 << 20


def read_frame(s: socket.socket) -> bytes | None:
    """One size-prefixed Kafka frame including its prefix, or None at EOF/error/oversize."""
    prefix = _read_exact(s, 4)
    if prefix is None:
        return None
    size = struct.unpack(">i", prefix)[0]
    if size < 4 or size > MAX_FRAME_BYTES:
        return None
    body = _read_exact(s, size)
    return None if body is None else prefix + body


def _read_exact(s: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class FaultProxy:
    """Every `every`th Produce request gets a fault (alternately drop, delay), at most
    `max_faults` in total; `delay_s` must exceed the client's request timeout."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], every: int = 7,
                 max_faults: int = 24, delay_s: float = 1.5) -> None:
        self.upstream = upstream
        self.every = every
        self.max_faults = max_faults
        self.delay_s = delay_s
        self.produce_requests = 0
        self.drops = 0
        self.delays = 0
        self._lock = threading.Lock()
        self._closed = False
        self._conns: list[socket.socket] = []
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    @property
    def faults(self) -> int:
        return self.drops + self.delays

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self._server.close()
        with self._lock:
            for s in self._conns:
                _close(s)

    def _choose_fault(self) -> str | None:
        with self._lock:
            self.produce_requests += 1
            if self.produce_requests % self.every != 0 or self.faults >= self.max_faults:
                return None
            if self.faults % 2 == 0:
                self.drops += 1
                return "drop"
            self.delays += 1
            return "delay"

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            for s in (client, upstream):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns += [client, upstream]
            pending: dict[int, str] = {}
            threading.Thread(target=self._requests, args=(client, upstream, pending),
                             daemon=True).start()
            threading.Thread(target=self._responses, args=(client, upstream, pending),
                             daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket,
                  pending: dict[int, str]) -> None:
        """Client -> broker: forward everything; remember which Produce requests get a fault."""
        while True:
            frame = read_frame(client)
            if frame is None or len(frame) < 12:
                break
            api_key, _version, correlation_id = struct.unpack(">hhi", frame[4:12])
            if api_key == PRODUCE:
                fault = self._choose_fault()
                if fault is not None:
                    pending[correlation_id] = fault
            try:
                upstream.sendall(frame)
            except OSError:
                break
        _close(client)
        _close(upstream)

    def _responses(self, client: socket.socket, upstream: socket.socket,
                   pending: dict[int, str]) -> None:
        """Broker -> client: forward, except for the responses chosen for a fault."""
        while True:
            frame = read_frame(upstream)
            if frame is None or len(frame) < 8:
                break
            correlation_id = struct.unpack(">i", frame[4:8])[0]
            fault = pending.pop(correlation_id, None)
            if fault == "drop":
                break
            if fault == "delay":
                time.sleep(self.delay_s)
            try:
                client.sendall(frame)
            except OSError:
                break
        _close(client)
        _close(upstream)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def parse_addr(value: str) -> tuple[str, int]:
    host, port = value.rsplit(":", 1)
    return host, int(port)
