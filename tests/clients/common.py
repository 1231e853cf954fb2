"""Shared helpers for the Python-driven client scenarios (tests/clients).

Owns: the deterministic message plan (keys, values, headers, timestamps per partition), the
strict comparison of consumed records against that plan, the expected answer of a
ListOffsets-by-timestamp query, the topic-config expectations, and the RESULT line protocol
that run.sh counts.

Never: talks to a broker itself (each scenario uses its own client library for that), or
relaxes a check to make a broker pass. A check that fails prints what differed.

Invariants of the plan (the checks rely on them):
- message i goes to partition i % PARTITIONS; within a partition its offset is i // PARTITIONS;
- keys carry the partition and a per-partition sequence number, so order is checkable;
- timestamps are explicit, non-decreasing per partition, come in equal pairs (so "first offset
  with timestamp >= T" differs from "any offset with timestamp == T"), and lie in the recent past
  (inside any retention.ms the scenarios set, and never in the future).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field

PARTITIONS = 3
# retention.ms set as a topic override at creation; must show as DYNAMIC_TOPIC_CONFIG.
OVERRIDE_RETENTION_MS = "3600000"
# Kafka 4.x defaults checked on every topic (COMPAT.md "Topic configs and defaults").
DEFAULT_RETENTION_MS = "604800000"
EXPECTED_DEFAULTS = {
    "cleanup.policy": "delete",
    "max.message.bytes": "1048588",
    "compression.type": "producer",
    "message.timestamp.type": "CreateTime",
}
MAX_DIFFS_SHOWN = 8


def bootstrap() -> str:
    value = os.environ.get("BOOTSTRAP", "")
    if not value:
        sys.exit("BOOTSTRAP=host:port is required (run.sh sets it)")
    return value


def message_count(default: int = 100000) -> int:
    return int(os.environ.get("MESSAGES", str(default)))


def run_id() -> str:
    """Unique suffix so reruns against a long-lived broker never reuse a topic."""
    return os.environ.get("RUN_ID") or uuid.uuid4().hex[:8]


def topic_name(client: str, variant: str) -> str:
    return f"clients-{client}-{variant}-{run_id()}"


def base_timestamp_ms() -> int:
    """Two minutes ago: safely in the past, far inside a 1 h retention."""
    return int(time.time() * 1000) - 120_000


@dataclass(frozen=True)
class Msg:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple  # tuple of (str, bytes) in produce order, duplicates allowed
    timestamp_ms: int


def plan(n: int, client: str, codec: str, base_ts_ms: int) -> list[list[Msg]]:
    """The messages to produce, grouped by partition, in offset order."""
    parts: list[list[Msg]] = [[] for _ in range(PARTITIONS)]
    for i in range(n):
        p = i % PARTITIONS
        seq = i // PARTITIONS
        key = f"k{p}-{seq:09d}".encode()
        filler = ("%08x" % ((i * 2654435761) & 0xFFFFFFFF)) * (1 + i % 12)
        value = f"{client}|{codec}|{i}|{filler}".encode()
        headers = [("seq", str(i).encode()), ("client", client.encode())]
        if i % 10 == 0:
            headers += [("dup", b"1"), ("dup", b"2"), ("empty", b"")]
        ts = base_ts_ms + (seq // 2) * 2
        parts[p].append(Msg(p, seq, key, value, tuple(headers), ts))
    return parts


def interleaved(parts: list[list[Msg]]) -> list[Msg]:
    """Produce order: message i of the plan, i = 0..n-1."""
    out = []
    longest = max((len(p) for p in parts), default=0)
    for seq in range(longest):
        for p in parts:
            if seq < len(p):
                out.append(p[seq])
    return out


@dataclass
class Got:
    """A consumed record, normalised to plain Python types by the scenario."""
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple
    timestamp_ms: int
    timestamp_type: str  # "create", "append" or whatever the client reported


@dataclass
class Checker:
    """Collects failures for one scenario; each failure is a line saying what differed."""
    name: str
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)

    def expect(self, cond: bool, what: str) -> None:
        if not cond:
            self.fail(what)

    def expect_eq(self, got, want, what: str) -> None:
        if got != want:
            self.fail(f"{what}: got {got!r}, want {want!r}")

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_records(chk: Checker, parts: list[list[Msg]], got: dict[int, list[Got]],
                   check_timestamps: bool = True) -> None:
    """Strict comparison of everything consumed against the plan."""
    for p, want_list in enumerate(parts):
        got_list = got.get(p, [])
        chk.expect_eq(len(got_list), len(want_list), f"partition {p} record count")
        diffs = 0
        for idx, (w, g) in enumerate(zip(want_list, got_list)):
            problems = []
            if g.offset != w.offset:
                problems.append(f"offset {g.offset} != {w.offset}")
            if g.key != w.key:
                problems.append(f"key {g.key!r} != {w.key!r}")
            if g.value != w.value:
                problems.append(f"value {short(g.value)} != {short(w.value)}")
            if tuple(g.headers) != w.headers:
                problems.append(f"headers {g.headers!r} != {w.headers!r}")
            if check_timestamps and g.timestamp_ms != w.timestamp_ms:
                problems.append(f"timestamp {g.timestamp_ms} != {w.timestamp_ms}")
            if check_timestamps and g.timestamp_type != "create":
                problems.append(f"timestamp type {g.timestamp_type!r} != 'create'")
            if problems:
                diffs += 1
                if diffs <= MAX_DIFFS_SHOWN:
                    chk.fail(f"partition {p} record #{idx}: " + "; ".join(problems))
        if diffs > MAX_DIFFS_SHOWN:
            chk.fail(f"partition {p}: {diffs - MAX_DIFFS_SHOWN} more differing records")
        verify_order(chk, p, got_list)


def verify_order(chk: Checker, p: int, got_list: list[Got]) -> None:
    """Key sequence numbers and offsets must strictly increase within a partition."""
    prev_seq = -1
    prev_off = -1
    for g in got_list:
        seq = key_seq(g.key, p)
        if seq is None:
            chk.fail(f"partition {p} offset {g.offset}: key {g.key!r} is not from partition {p}")
            return
        if seq <= prev_seq or g.offset <= prev_off:
            chk.fail(f"partition {p}: out of order at offset {g.offset} (seq {seq} after {prev_seq})")
            return
        prev_seq, prev_off = seq, g.offset


def key_seq(key: bytes | None, p: int) -> int | None:
    prefix = f"k{p}-".encode()
    if not key or not key.startswith(prefix):
        return None
    try:
        return int(key[len(prefix):])
    except ValueError:
        return None


def short(b: bytes | None, limit: int = 60) -> str:
    if b is None:
        return "None"
    r = repr(b)
    return r if len(r) <= limit else r[:limit] + f"...({len(b)} bytes)"


def first_offset_at_or_after(records: list[Msg] | list[Got], ts_ms: int) -> int:
    """Kafka's ListOffsets-by-timestamp answer: first offset with timestamp >= ts, else -1."""
    for r in records:
        if r.timestamp_ms >= ts_ms:
            return r.offset
    return -1


def timestamp_queries(records: list) -> list[int]:
    """Timestamps to look up for one partition: before all, exact pair start, between pairs,
    exactly the second of a pair, and after the last (expects -1)."""
    if not records:
        return []
    mid = records[len(records) // 2]
    first = records[0].timestamp_ms
    last = records[-1].timestamp_ms
    qs = [first - 100_000, mid.timestamp_ms, mid.timestamp_ms + 1, last, last + 1]
    # a timestamp shared by two records: the answer must be the first of them
    for r_prev, r in zip(records, records[1:]):
        if r.timestamp_ms == r_prev.timestamp_ms and r.offset > len(records) // 3:
            qs.append(r.timestamp_ms)
            break
    return qs


def check_topic_configs(chk: Checker, configs: dict[str, tuple[str | None, str]],
                        override: bool) -> None:
    """configs maps name -> (value, source) where source is a Kafka ConfigSource name such as
    'DYNAMIC_TOPIC_CONFIG' or 'DEFAULT_CONFIG' (scenarios translate their client's enum)."""
    for name, want in EXPECTED_DEFAULTS.items():
        got = configs.get(name)
        if got is None:
            chk.fail(f"DescribeConfigs: {name} missing (got {len(configs)} entries)")
            continue
        chk.expect_eq(got[0], want, f"DescribeConfigs {name} value")
        chk.expect(got[1] != "DYNAMIC_TOPIC_CONFIG",
                   f"DescribeConfigs {name}: source {got[1]} but it was not set on the topic")
    got = configs.get("retention.ms")
    if got is None:
        chk.fail("DescribeConfigs: retention.ms missing")
        return
    if override:
        chk.expect_eq(got, (OVERRIDE_RETENTION_MS, "DYNAMIC_TOPIC_CONFIG"),
                      "DescribeConfigs retention.ms set at creation (value, source)")
    else:
        chk.expect_eq(got[0], DEFAULT_RETENTION_MS, "DescribeConfigs retention.ms default value")
        chk.expect(got[1] != "DYNAMIC_TOPIC_CONFIG",
                   f"DescribeConfigs retention.ms: source {got[1]} but it was not set on the topic")


# Kafka's ConfigSource ids (DescribeConfigs v1+), for clients that hand back raw numbers.
CONFIG_SOURCE_NAMES = {
    -1: "UNKNOWN", 0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG",
}


def report(chk: Checker, seconds: float | None = None, note: str = "") -> bool:
    """Print the RESULT line run.sh counts, preceded by every failure."""
    for f in chk.failures:
        print(f"  [{chk.name}] {f}", flush=True)
    took = f" ({seconds:.1f}s)" if seconds is not None else ""
    extra = f" {note}" if note else ""
    print(f"RESULT {'PASS' if chk.ok else 'FAIL'} {chk.name}{took}{extra}", flush=True)
    return chk.ok


def skip(name: str, reason: str) -> None:
    print(f"RESULT SKIP {name} -- {reason}", flush=True)


def group_apis_available() -> tuple[bool, str]:
    """run.sh probes ApiVersions once and exports GROUP_APIS=1/0 with a reason."""
    flag = os.environ.get("GROUP_APIS", "1")
    return flag == "1", os.environ.get("GROUP_APIS_REASON", "")


INIT_PRODUCER_ID = 22


def broker_lacks_api(api_key: int) -> bool:
    """True only when run.sh's ApiVersions probe ran and did not list api_key."""
    listed = os.environ.get("BROKER_APIS", "")
    return bool(listed) and str(api_key) not in listed.split(",")


# --- transactions (issue 4) -------------------------------------------------------------------

TXN_APIS = {10: "FindCoordinator", 22: "InitProducerId", 24: "AddPartitionsToTxn",
            25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit"}


def missing_txn_apis() -> list[str]:
    return [v for k, v in TXN_APIS.items() if broker_lacks_api(k)]


def txn_phases(n: int) -> list[tuple[str, bool, list[tuple[int, bytes]]]]:
    """Three transactions of n records each: commit, abort, commit. Returns
    (phase, commit?, [(partition, key)]); record i of a phase goes to partition i % 3 and its
    key (also used as value) names the phase, so a leaked aborted record is recognisable."""
    out = []
    for phase, commit in (("c1", True), ("ab", False), ("c2", True)):
        out.append((phase, commit, [(i % PARTITIONS, f"{phase}-{i:06d}".encode())
                                    for i in range(n)]))
    return out


def txn_expectations(n: int) -> list[tuple[str, dict[int, list[bytes]]]]:
    """(isolation level, keys per partition in offset order) after txn_phases(n):
    read_committed sees the two committed phases, read_uncommitted all three."""
    phases = txn_phases(n)
    def keys(selected):
        return {pt: [k for _, commit, recs in selected for part, k in recs if part == pt]
                for pt in range(PARTITIONS)}
    return [("read_committed", keys([x for x in phases if x[1]])),
            ("read_uncommitted", keys(phases))]


def check_txn_read(chk: Checker, isolation: str, want: dict[int, list[bytes]],
                   got: dict[int, list[bytes]]) -> None:
    for pt in range(PARTITIONS):
        keys = got.get(pt, [])
        if keys != want[pt]:
            extra = sorted(set(keys) - set(want[pt]))[:3]
            lost = sorted(set(want[pt]) - set(keys))[:3]
            chk.fail(f"{isolation} partition {pt}: {len(keys)} records, want "
                     f"{len(want[pt])}; unexpected {extra}, missing {lost}"
                     + (" (same records, wrong order)" if not extra and not lost else ""))


EOS_KEYS = 30


def eos_input(n: int) -> list[tuple[int, bytes, bytes]]:
    """Input of a consume-transform-produce copy, as (partition, key, value): EOS_KEYS keys,
    key k always on partition k % 3, values carry the key's own sequence number."""
    seqs = [0] * EOS_KEYS
    out = []
    for i in range(n):
        k = i % EOS_KEYS
        key = f"key-{k:02d}".encode()
        out.append((k % PARTITIONS, key, key + b"|" + f"{seqs[k]:06d}".encode()))
        seqs[k] += 1
    return out


def eos_transform(value: bytes) -> bytes:
    return b"copy|" + value


def eos_want_counts(records: list[tuple[int, bytes, bytes]]) -> list[int]:
    return [sum(1 for r in records if r[0] == pt) for pt in range(PARTITIONS)]


def check_eos_output(chk: Checker, records: list, got: dict[int, list[tuple]]) -> None:
    """got: partition -> [(key, value)] in offset order, read with read_committed. Every input
    must be there exactly once (as its transform), per key in input order, nothing else."""
    want_by_key: dict[bytes, list[bytes]] = {}
    for _, key, value in records:
        want_by_key.setdefault(key, []).append(eos_transform(value))
    got_by_key: dict[bytes, list[bytes]] = {}
    for recs in got.values():
        for key, value in recs:
            got_by_key.setdefault(key, []).append(value)
    bad = 0
    for key, want in want_by_key.items():
        have = got_by_key.get(key, [])
        if have != want:
            bad += 1
            if bad <= 3:
                dups = len(have) - len(set(have))
                lost = len(set(want) - set(have))
                chk.fail(f"read_committed output key {key!r}: {len(have)} records, want "
                         f"{len(want)} ({dups} duplicates, {lost} missing, in order: "
                         f"{have == sorted(have)})")
    chk.expect(not bad, f"{bad} of {len(want_by_key)} keys wrong in the read_committed output")
    extra = set(got_by_key) - set(want_by_key)
    chk.expect(not extra, f"unexpected keys in the output: {sorted(extra)[:3]}")


def proxy_addresses() -> tuple[str, str] | None:
    """(listen, upstream) for faultproxy.FaultProxy, from PROXY_LISTEN / PROXY_UPSTREAM.

    run.sh sets both when it starts the broker: upstream is the broker's second listener
    (PROXIED), which advertises the listen address, so clients that bootstrap through the proxy
    send every request through it. Against another broker set both by hand, or the proxy
    scenarios report SKIP."""
    listen = os.environ.get("PROXY_LISTEN", "")
    upstream = os.environ.get("PROXY_UPSTREAM", "")
    if not listen or not upstream:
        return None
    return listen, upstream


PROXY_SKIP_REASON = ("needs PROXY_LISTEN/PROXY_UPSTREAM: a broker listener that advertises the "
                     "proxy's address (run.sh sets this up when it starts the broker)")


def deadline_s(default: float = 120.0) -> float:
    return time.monotonic() + float(os.environ.get("PHASE_TIMEOUT_S", str(default)))
