"""kcat scenario (Debian's kcat 1.7.1 on librdkafka 2.0.2, the old librdkafka COMPAT.md warns
about): metadata (-L), produce per codec (-P -z), consume (-C -J -e), offsets by timestamp both
as a query (-Q -t topic:p:ts) and as a start position (-o s@ts), and an optional -G group pass.

kcat has no admin API: topics are created and their configs described with confluent-kafka's
admin client (librdkafka as well). kcat cannot set per-message timestamps or headers, so the
records carry producer CreateTime and fixed headers; the timestamp checks use the timestamps
read back (many records share a millisecond, which makes "first offset >= T" meaningful).
Never relaxes a check; every failure names the request and what differed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import common as c
import scenario_confluent as sc

CLIENT = "kcat"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
HEADERS = (("client", b"kcat"), ("dup", b"1"), ("dup", b"2"))
KCAT_TIMEOUT_S = 120


def kcat(args: list[str], stdin: bytes | None = None,
         timeout_s: float = KCAT_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", "-b", c.bootstrap(), "-m", "30", *args], input=stdin,
                          capture_output=True, timeout=timeout_s)


def check_metadata(chk: c.Checker, topic: str) -> None:
    r = kcat(["-L", "-J", "-t", topic])
    if r.returncode != 0:
        chk.fail(f"kcat -L failed rc={r.returncode}: {r.stderr.decode(errors='replace')[:300]}")
        return
    md = json.loads(r.stdout)
    topics = [t for t in md.get("topics", []) if t.get("topic") == topic]
    if len(topics) != 1:
        chk.fail(f"kcat -L: topic {topic} not listed: {md!r:.300}")
        return
    chk.expect_eq(len(topics[0].get("partitions", [])), c.PARTITIONS, "kcat -L partition count")
    chk.expect(not topics[0].get("error"), f"kcat -L topic error {topics[0].get('error')}")


def produce(chk: c.Checker, topic: str, codec: str, parts: list[list[c.Msg]]) -> tuple[int, int]:
    """One kcat -P per partition; returns the wall-clock window (ms) the records were sent in.

    librdkafka's `msg` debug lines name the codec of every batch it sends. Each must be `codec`:
    librdkafka quietly sends batches uncompressed when it thinks the broker cannot take the
    codec (and says so only at debug level until the host has been up for a day)."""
    hdr_args = []
    for k, v in HEADERS:
        hdr_args += ["-H", f"{k}={v.decode()}"]
    want = "uncompressed" if codec == "none" else codec
    start_ms = int(time.time() * 1000)
    for p, recs in enumerate(parts):
        data = b"".join(m.key + b"\t" + m.value + b"\n" for m in recs)
        r = kcat(["-P", "-t", topic, "-p", str(p), "-K", "\t", "-X",
                  f"compression.codec={codec}", "-X", "linger.ms=20", "-X", "debug=msg",
                  *hdr_args], stdin=data)
        lines = r.stderr.decode(errors="replace").splitlines()
        # Debug lines start "%7|"; anything else on stderr is a complaint.
        other = [ln for ln in lines if ln.strip() and not ln.startswith("%7|")]
        if r.returncode != 0 or other:
            chk.fail(f"kcat -P partition {p} rc={r.returncode}: {' | '.join(other)[:400]}")
        sets = [ln for ln in lines if "Produce MessageSet with" in ln]
        codecs = sorted({ln.rstrip().rstrip(")").rsplit(", ", 1)[-1] for ln in sets})
        if not sets or codecs != [want]:
            chk.fail(f"kcat -P partition {p}: {len(sets)} batches sent, "
                     f"codecs {codecs}, expected {want!r}")
    return start_ms, int(time.time() * 1000)


def parse_json_line(line: bytes) -> c.Got:
    j = json.loads(line)
    headers = j.get("headers") or []
    if isinstance(headers, dict):  # older kcat: object form (loses duplicates)
        headers = [x for kv in headers.items() for x in kv]
    pairs = tuple((headers[i], None if headers[i + 1] is None else headers[i + 1].encode())
                  for i in range(0, len(headers), 2))
    key = j.get("key")
    val = j.get("payload")
    return c.Got(j["partition"], j["offset"], None if key is None else key.encode(),
                 None if val is None else val.encode(), pairs, j.get("ts", -1),
                 j.get("tstype", "?"))


def consume(chk: c.Checker, topic: str) -> dict[int, list[c.Got]]:
    got: dict[int, list[c.Got]] = {p: [] for p in range(c.PARTITIONS)}
    r = kcat(["-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q",
              "-X", "fetch.wait.max.ms=100"])
    if r.returncode != 0:
        chk.fail(f"kcat -C rc={r.returncode}: {r.stderr.decode(errors='replace')[:400]}")
    for line in r.stdout.splitlines():
        if line.strip():
            g = parse_json_line(line)
            got.setdefault(g.partition, []).append(g)
    return got


def check_times(chk: c.Checker, topic: str, got: dict[int, list[c.Got]],
                window: tuple[int, int]) -> None:
    lo, hi = window
    for p, recs in got.items():
        bad = [g for g in recs if not lo - 1000 <= g.timestamp_ms <= hi + 1000
               or g.timestamp_type != "create"]
        if bad:
            chk.fail(f"partition {p}: {len(bad)} records with timestamp outside produce window "
                     f"[{lo},{hi}] or not CreateTime, first {bad[0]}")
        prev = -1
        for g in recs:
            if g.timestamp_ms < prev:
                chk.fail(f"partition {p}: CreateTime went backwards at offset {g.offset}")
                break
            prev = g.timestamp_ms
        for ts in c.timestamp_queries(recs):
            want = c.first_offset_at_or_after(recs, ts)
            check_query(chk, topic, p, ts, want)
            check_start_at(chk, topic, p, ts, want)


def check_query(chk: c.Checker, topic: str, p: int, ts: int, want: int) -> None:
    """kcat -Q prints `<topic> [<p>] offset <n>` per partition."""
    r = kcat(["-Q", "-t", f"{topic}:{p}:{ts}"])
    out = r.stdout.decode(errors="replace").strip()
    if r.returncode != 0:
        chk.fail(f"kcat -Q {p}:{ts} rc={r.returncode}: {r.stderr.decode(errors='replace')[:300]}")
        return
    fields = out.split()
    got = int(fields[-1]) if fields and fields[-1].lstrip("-").isdigit() else None
    chk.expect_eq(got, want, f"kcat -Q ListOffsets by timestamp p{p} ts={ts} (output {out!r})")


def check_start_at(chk: c.Checker, topic: str, p: int, ts: int, want: int) -> None:
    """kcat -o s@ts starts at the looked-up offset; -1 means end, so nothing is printed."""
    r = kcat(["-C", "-t", topic, "-p", str(p), "-o", f"s@{ts}", "-c", "1", "-e", "-J", "-q"])
    if r.returncode != 0:
        chk.fail(f"kcat -o s@{ts} p{p} rc={r.returncode}: "
                 f"{r.stderr.decode(errors='replace')[:300]}")
        return
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    got = parse_json_line(lines[0]).offset if lines else -1
    chk.expect_eq(got, want, f"kcat -o s@{ts} p{p} first offset")


def expected_parts(parts: list[list[c.Msg]]) -> list[list[c.Msg]]:
    return [[c.Msg(m.partition, m.offset, m.key, m.value, HEADERS, m.timestamp_ms) for m in recs]
            for recs in parts]


def run_codec(codec: str, n: int) -> bool:
    chk = c.Checker(f"kcat/{codec}")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, codec)
    override = codec != "none"
    parts = expected_parts(c.plan(n, CLIENT, codec, 0))
    try:
        admin = sc.admin_client()
        sc.create_topic(chk, admin, topic, override)
        check_metadata(chk, topic)
        window = produce(chk, topic, codec, parts)
        got = consume(chk, topic)
        c.verify_records(chk, parts, got, check_timestamps=False)
        check_times(chk, topic, got, window)
        sc.check_configs(chk, admin, topic, override)
    except Exception as e:  # noqa: BLE001 - any failure is a scenario failure
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start,
                    f"[{n} msgs, topic {topic}; admin via confluent-kafka]")


def run_group(n: int) -> bool:
    name = "kcat/group"
    ok, reason = c.group_apis_available()
    if not ok:
        c.skip(name, reason)
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "group")
    group = f"clients-{CLIENT}-group-{c.run_id()}"
    parts = expected_parts(c.plan(n, CLIENT, "group", 0))
    try:
        admin = sc.admin_client()
        sc.create_topic(chk, admin, topic, False)
        produce(chk, topic, "none", parts)
        limit_s = c.deadline_s() - time.monotonic()
        try:
            r = kcat(["-G", group, "-X", "auto.offset.reset=earliest", "-e", "-J", "-q", topic],
                     timeout_s=limit_s)
        except subprocess.TimeoutExpired as e:
            lines = len((e.stdout or b"").splitlines())
            chk.fail(f"kcat -G did not reach the end within {limit_s:.0f} s "
                     f"({lines} records printed): {(e.stderr or b'').decode(errors='replace')[:300]}")
            return c.report(chk, time.monotonic() - start, f"[{n} msgs, group {group}]")
        if r.returncode != 0:
            chk.fail(f"kcat -G rc={r.returncode}: {r.stderr.decode(errors='replace')[:400]}")
        got: dict[int, list[c.Got]] = {p: [] for p in range(c.PARTITIONS)}
        for line in r.stdout.splitlines():
            if line.strip():
                g = parse_json_line(line)
                got.setdefault(g.partition, []).append(g)
        c.verify_records(chk, parts, got, check_timestamps=False)
        # kcat commits on close (enable.auto.commit); read the group's offsets back.
        from confluent_kafka import TopicPartition
        cons = sc.new_consumer(group)
        try:
            committed = cons.committed([TopicPartition(topic, p) for p in range(c.PARTITIONS)],
                                       timeout=10)
        finally:
            cons.close()
        chk.expect_eq([tp.offset for tp in committed], [len(x) for x in parts],
                      "OffsetFetch after kcat -G (committed offsets)")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs, group {group}]")


def main() -> int:
    n = c.message_count()
    ok = True
    for codec in CODECS:
        ok &= run_codec(codec, n)
    ok &= run_group(min(n, 20000))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
