"""kafka-python scenario: admin create/describe, produce per codec, consume by manual
assignment, offsets_for_times, an optional consumer-group pass, the default (idempotent)
producer, and transactions: commit/abort with both isolation levels and a consume-transform-
produce copy with send_offsets_to_transaction (kafka-python >= 2.1 supports them).

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
from kafka.structs import OffsetAndMetadata

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


def new_topic(chk: c.Checker, variant: str) -> str:
    topic = c.topic_name(CLIENT, variant)
    admin = admin_client()
    try:
        create_topic(chk, admin, topic, False)
    finally:
        admin.close()
    return topic


def read_settled(chk: c.Checker, topic: str, isolation: str,
                 want: list[int]) -> dict[int, list]:
    """Assign every partition from offset 0 and read until each holds its wanted count, then
    one more second, so records that should be invisible (aborted ones) get a chance to show."""
    cons = new_consumer(group_id=None, isolation_level=isolation)
    got: dict[int, list] = {p: [] for p in range(c.PARTITIONS)}
    try:
        tps = [TopicPartition(topic, p) for p in range(c.PARTITIONS)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        deadline = c.deadline_s()
        settle_until = None
        while settle_until is None or time.monotonic() < settle_until:
            for tp, recs in cons.poll(timeout_ms=200, max_records=5000).items():
                got[tp.partition].extend(recs)
            if settle_until is None and all(len(got[p]) >= want[p] for p in got):
                settle_until = time.monotonic() + 1.0
            if settle_until is None and time.monotonic() > deadline:
                chk.fail(f"Fetch ({isolation}): timed out with {[len(got[p]) for p in got]} "
                         f"records, want {want}")
                break
    finally:
        cons.close()
    return got


def transactional_producer(name: str) -> KafkaProducer:
    prod = KafkaProducer(bootstrap_servers=c.bootstrap(), linger_ms=5, acks="all",
                         transactional_id=f"clients-{CLIENT}-{name}-{c.run_id()}")
    prod.init_transactions()
    return prod


def run_transactions(n: int) -> bool:
    """Commit, abort, commit through kafka-python's transactional producer: read_committed
    sees exactly the committed records in order, read_uncommitted all of them."""
    name = "kafka-python/transactions"
    missing = c.missing_txn_apis()
    if missing:
        c.skip(name, f"broker does not advertise {' '.join(missing)}")
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = "?"
    try:
        topic = new_topic(chk, "txn")
        prod = transactional_producer("txn")
        try:
            for _phase, commit, recs in c.txn_phases(n):
                prod.begin_transaction()
                futures = [prod.send(topic, key=k, value=k, partition=pt) for pt, k in recs]
                if commit:
                    prod.commit_transaction()
                else:
                    prod.flush()
                    prod.abort_transaction()
                failed = [f.exception for f in futures if f.failed()]
                chk.expect(not failed, f"{len(failed)} sends failed, first: {failed[:1]}")
        finally:
            prod.close(timeout=10)
        for isolation, want in c.txn_expectations(n):
            got = read_settled(chk, topic, isolation, [len(want[p]) for p in range(c.PARTITIONS)])
            c.check_txn_read(chk, isolation, want, {p: [r.key for r in got[p]] for p in got})
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[3 x {n} msgs, topic {topic}]")


def run_eos(n: int) -> bool:
    """Consume-transform-produce with send_offsets_to_transaction (group metadata, KIP-447):
    one batch past a third of the input is aborted and re-read from the committed offsets.
    read_committed output: every input once, per-key order; read_uncommitted also shows the
    aborted batch; the group's committed offsets end at the input's end."""
    name = "kafka-python/eos-copy"
    missing = c.missing_txn_apis()
    if missing:
        c.skip(name, f"broker does not advertise {' '.join(missing)}")
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    group = f"clients-{CLIENT}-eos-{c.run_id()}"
    records = c.eos_input(n)
    want = c.eos_want_counts(records)
    aborted = 0
    try:
        src = new_topic(chk, "eos-in")
        dst = new_topic(chk, "eos-out")
        plain = KafkaProducer(bootstrap_servers=c.bootstrap(), linger_ms=5, acks="all",
                              enable_idempotence=False)
        for pt, key, value in records:
            plain.send(src, key=key, value=value, partition=pt)
        plain.flush(timeout=30)
        plain.close(timeout=10)
        prod = transactional_producer("eos")
        cons = new_consumer(group_id=group, isolation_level="read_committed",
                            session_timeout_ms=10000, max_poll_records=100)
        copied = 0
        try:
            cons.subscribe([src])
            deadline = c.deadline_s()
            while copied < n and time.monotonic() < deadline:
                batch = cons.poll(timeout_ms=300)
                if not batch:
                    continue
                prod.begin_transaction()
                offsets = {}
                count = 0
                for tp, recs in batch.items():
                    for r in recs:
                        prod.send(dst, key=r.key, value=c.eos_transform(r.value),
                                  partition=tp.partition)
                    offsets[tp] = OffsetAndMetadata(recs[-1].offset + 1, "", -1)
                    count += len(recs)
                prod.send_offsets_to_transaction(offsets, cons.group_metadata())
                if not aborted and copied + count > n // 3:
                    prod.flush()
                    prod.abort_transaction()
                    aborted = count
                    for tp in batch:  # re-read what the aborted transaction consumed
                        cons.seek(tp, cons.committed(tp) or 0)
                    continue
                prod.commit_transaction()
                copied += count
            chk.expect_eq(copied, n, "records copied in committed transactions")
            tps = [TopicPartition(src, p) for p in range(c.PARTITIONS)]
            chk.expect_eq([cons.committed(tp) for tp in tps], want,
                          "group's committed input offsets after the copy")
        finally:
            prod.close(timeout=10)
            cons.close()
        got = read_settled(chk, dst, "read_committed", want)
        c.check_eos_output(chk, records, {p: [(r.key, r.value) for r in got[p]] for p in got})
        dirty = read_settled(chk, dst, "read_uncommitted", want)
        total = sum(len(v) for v in dirty.values())
        chk.expect_eq(total, n + aborted, "read_uncommitted output records (copies + aborted)")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start,
                    f"[{n} msgs, one aborted batch of {aborted}, group {group}]")


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
    ok &= run_transactions(min(n, 1000))
    ok &= run_eos(min(n, 900))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
