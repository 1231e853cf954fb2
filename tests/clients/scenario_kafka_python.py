"""kafka-python scenario: admin create/describe, produce per codec, consume by manual
assignment, offsets_for_times, and an optional consumer-group pass.

Owns only what it does through kafka-python (pure Python, so the slowest client: the compressed
codecs may run with fewer messages, see CODEC_MESSAGES below, and the RESULT line says so).
Never relaxes a check; every failure names the request and what differed.
"""

from __future__ import annotations

import os
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

import common as c

CLIENT = "kafka-python"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def admin_client() -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=c.bootstrap(), client_id="clients-kafka-python")


def create_topic(chk: c.Checker, admin: KafkaAdminClient, topic: str, override: bool) -> None:
    cfg = {"retention.ms": c.OVERRIDE_RETENTION_MS} if override else {}
    admin.create_topics({topic: {"num_partitions": c.PARTITIONS, "replication_factor": 1,
                                 "configs": cfg}}, timeout_ms=30000)
    try:
        admin.create_topics({topic: {"num_partitions": c.PARTITIONS, "replication_factor": 1}},
                            timeout_ms=30000)
        chk.fail("CreateTopics of an existing topic succeeded; want TOPIC_ALREADY_EXISTS")
    except TopicAlreadyExistsError:
        pass
    deadline = time.monotonic() + 30
    while True:
        desc = admin.describe_topics([topic])
        parts = desc[0].get("partitions", []) if desc else []
        if len(parts) == c.PARTITIONS and all(p.get("leader", p.get("leader_id", -1)) >= 0
                                              for p in parts):
            return
        if time.monotonic() > deadline:
            chk.fail(f"Metadata for {topic}: {desc!r:.300}, want {c.PARTITIONS} partitions")
            return
        time.sleep(0.2)


def produce(chk: c.Checker, topic: str, codec: str, parts: list[list[c.Msg]],
            defaults: bool = False) -> None:
    """defaults=True keeps kafka-python's own producer defaults (idempotence on since 3.0)."""
    conf = {} if defaults else dict(compression_type=None if codec == "none" else codec,
                                    linger_ms=20, batch_size=256 * 1024, acks="all",
                                    max_request_size=8 * 1024 * 1024, enable_idempotence=False)
    prod = KafkaProducer(bootstrap_servers=c.bootstrap(), **conf)
    futures = []
    try:
        for m in c.interleaved(parts):
            futures.append((m, prod.send(topic, value=m.value, key=m.key,
                                         headers=list(m.headers), partition=m.partition,
                                         timestamp_ms=m.timestamp_ms)))
        prod.flush(timeout=120)
    finally:
        prod.close(timeout=10)
    bad = 0
    pending = futures
    for m, f in pending:
        problem = None
        if not f.is_done:
            problem = "not delivered"
        elif f.failed():
            problem = f"error {f.exception!r}"
        elif (f.value.partition, f.value.offset) != (m.partition, m.offset):
            problem = f"acked at p{f.value.partition}@{f.value.offset}"
        if problem:
            bad += 1
            if bad <= 3:
                chk.fail(f"Produce key {m.key!r} (want p{m.partition}@{m.offset}): {problem}")
    if bad > 3:
        chk.fail(f"Produce: {bad - 3} more bad acks (of {len(pending)})")


def to_got(r) -> c.Got:
    kind = {0: "create", 1: "append"}.get(r.timestamp_type, f"type{r.timestamp_type}")
    return c.Got(r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp, kind)


def new_consumer(**extra) -> KafkaConsumer:
    conf = dict(bootstrap_servers=c.bootstrap(), enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=100,
                max_partition_fetch_bytes=4 * 1024 * 1024)
    conf.update(extra)
    return KafkaConsumer(**conf)


def drain(chk: c.Checker, cons: KafkaConsumer, want: list[int]) -> dict[int, list[c.Got]]:
    got: dict[int, list[c.Got]] = {p: [] for p in range(c.PARTITIONS)}
    deadline = c.deadline_s()
    while any(len(got[p]) < want[p] for p in got):
        if time.monotonic() > deadline:
            chk.fail(f"Fetch: timed out; consumed {[len(got[p]) for p in got]}, want {want}")
            break
        for tp, recs in cons.poll(timeout_ms=500, max_records=20000).items():
            got[tp.partition].extend(to_got(r) for r in recs)
    return got


def consume_assigned(chk: c.Checker, topic: str, want: list[int]) -> dict[int, list[c.Got]]:
    cons = new_consumer(group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in range(c.PARTITIONS)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        got = drain(chk, cons, want)
        lo = cons.beginning_offsets(tps)
        hi = cons.end_offsets(tps)
        for tp in tps:
            chk.expect_eq((lo.get(tp), hi.get(tp)), (0, want[tp.partition]),
                          f"ListOffsets earliest/latest partition {tp.partition}")
        check_offsets_for_times(chk, cons, topic)
    finally:
        cons.close()
    return got


_PARTS: list[list[c.Msg]] = []


def check_offsets_for_times(chk: c.Checker, cons: KafkaConsumer, topic: str) -> None:
    for p, recs in enumerate(_PARTS):
        tp = TopicPartition(topic, p)
        for ts in c.timestamp_queries(recs):
            want = c.first_offset_at_or_after(recs, ts)
            res = cons.offsets_for_times({tp: ts}).get(tp)
            got = -1 if res is None else res.offset
            chk.expect_eq(got, want, f"ListOffsets by timestamp p{p} ts={ts}")
            if res is not None and want >= 0:
                chk.expect_eq(res.timestamp, recs[want].timestamp_ms,
                              f"ListOffsets by timestamp p{p} ts={ts}: returned timestamp")


def check_configs(chk: c.Checker, admin: KafkaAdminClient, topic: str, override: bool) -> None:
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                 config_filter="all")
    entries = res.get("topic", {}).get(topic)
    if entries is None:
        chk.fail(f"DescribeConfigs: no result for topic {topic}: {res!r:.300}")
        return
    configs = {name: (e.get("value"), str(e.get("config_source"))) for name, e in entries.items()}
    c.check_topic_configs(chk, configs, override)


def run_codec(codec: str, n: int, note: str = "", defaults: bool = False) -> bool:
    global _PARTS
    chk = c.Checker(f"kafka-python/{codec}")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, codec)
    override = codec != "none"
    parts = c.plan(n, CLIENT, codec, c.base_timestamp_ms())
    _PARTS = parts
    if codec == "idempotent" and c.broker_lacks_api(c.INIT_PRODUCER_ID):
        chk.fail("broker does not advertise InitProducerId (ApiVersions key 22), which every "
                 "idempotent producer needs first")
    try:
        admin = admin_client()
        try:
            create_topic(chk, admin, topic, override)
            check_configs(chk, admin, topic, override)
            before = len(chk.failures)
            produce(chk, topic, codec, parts, defaults)
            if len(chk.failures) > before:
                return c.report(chk, time.monotonic() - start, "(consume skipped: produce failed)")
            got = consume_assigned(chk, topic, [len(x) for x in parts])
            c.verify_records(chk, parts, got)
        finally:
            admin.close()
    except Exception as e:  # noqa: BLE001 - any client exception is a scenario failure
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs{note}, topic {topic}]")


def run_group(n: int) -> bool:
    name = "kafka-python/group"
    ok, reason = c.group_apis_available()
    if not ok:
        c.skip(name, reason)
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "group")
    parts = c.plan(n, CLIENT, "group", c.base_timestamp_ms())
    group = f"clients-{CLIENT}-group-{c.run_id()}"
    try:
        admin = admin_client()
        try:
            create_topic(chk, admin, topic, False)
        finally:
            admin.close()
        produce(chk, topic, "none", parts)
        want = [len(x) for x in parts]
        cons = new_consumer(group_id=group, session_timeout_ms=10000)
        try:
            cons.subscribe([topic])
            got = drain(chk, cons, want)
            chk.expect_eq(sorted(tp.partition for tp in cons.assignment()),
                          list(range(c.PARTITIONS)), "group assignment (partitions)")
            cons.commit()
            tps = [TopicPartition(topic, p) for p in range(c.PARTITIONS)]
            chk.expect_eq([cons.committed(tp) for tp in tps], want,
                          "OffsetFetch after commit (committed offsets)")
        finally:
            cons.close()
        c.verify_records(chk, parts, got)
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs, group {group}]")


def main() -> int:
    n = c.message_count()
    # kafka-python is pure Python: KAFKA_PYTHON_CODEC_MESSAGES can cap the compressed codecs if
    # a slow machine needs it (measured here: ~9 s per 100000 messages, so no cap by default).
    codec_n = min(n, int(os.environ.get("KAFKA_PYTHON_CODEC_MESSAGES", str(n))))
    ok = True
    for codec in CODECS:
        if codec == "none" or codec_n == n:
            ok &= run_codec(codec, n)
        else:
            ok &= run_codec(codec, codec_n, f" (capped from {n} for speed)")
    # A producer with kafka-python's defaults: idempotent (InitProducerId, producer id/epoch/
    # sequence in every batch), as every stock kafka-python >= 3.0 user gets it.
    ok &= run_codec("idempotent", min(n, 20000), " (default producer config)", defaults=True)
    ok &= run_group(min(n, 20000))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
