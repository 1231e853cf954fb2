"""aiokafka scenario: admin create/describe, produce per codec, consume by manual assignment,
offsets_for_times, an optional consumer-group pass, an idempotent producer, and transactions:
commit/abort with both isolation levels and a consume-transform-produce copy with
send_offsets_to_transaction.

Owns only what it does through aiokafka (asyncio). aiokafka's admin client hands back raw
protocol responses, so this file reads error codes and config entries from them directly.
Never relaxes a check; every failure names the request and what differed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

import common as c

CLIENT = "aiokafka"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TOPIC_ALREADY_EXISTS = 36


async def create_topic(chk: c.Checker, admin: AIOKafkaAdminClient, topic: str,
                       override: bool) -> None:
    cfg = {"retention.ms": c.OVERRIDE_RETENTION_MS} if override else {}
    resp = await admin.create_topics([NewTopic(topic, c.PARTITIONS, 1, topic_configs=cfg)],
                                     timeout_ms=30000)
    codes = [(t[0], t[1]) for t in resp.topic_errors]
    chk.expect_eq(codes, [(topic, 0)], "CreateTopics (topic, error_code)")
    resp = await admin.create_topics([NewTopic(topic, c.PARTITIONS, 1)], timeout_ms=30000)
    codes = [(t[0], t[1]) for t in resp.topic_errors]
    chk.expect_eq(codes, [(topic, TOPIC_ALREADY_EXISTS)],
                  "CreateTopics of existing topic (topic, error_code)")
    deadline = time.monotonic() + 30
    while True:
        desc = await admin.describe_topics([topic])
        parts = desc[0].get("partitions", []) if desc else []
        if len(parts) == c.PARTITIONS and all(p.get("leader", -1) >= 0 for p in parts):
            return
        if time.monotonic() > deadline:
            chk.fail(f"Metadata for {topic}: {desc!r:.300}, want {c.PARTITIONS} partitions")
            return
        await asyncio.sleep(0.2)


async def produce(chk: c.Checker, topic: str, codec: str, parts: list[list[c.Msg]],
                  idempotent: bool = False) -> None:
    prod = AIOKafkaProducer(bootstrap_servers=c.bootstrap(),
                            compression_type=None if codec in ("none", "idempotent") else codec,
                            linger_ms=20, max_batch_size=256 * 1024, acks="all",
                            max_request_size=8 * 1024 * 1024, enable_idempotence=idempotent)
    await prod.start()
    pending = []
    try:
        for m in c.interleaved(parts):
            fut = await prod.send(topic, value=m.value, key=m.key, headers=list(m.headers),
                                  partition=m.partition, timestamp_ms=m.timestamp_ms)
            pending.append((m, fut))
        await prod.flush()
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
    finally:
        await prod.stop()
    bad = 0
    for (m, _), r in zip(pending, results):
        problem = None
        if isinstance(r, BaseException):
            problem = f"error {r!r}"
        elif (r.partition, r.offset) != (m.partition, m.offset):
            problem = f"acked at p{r.partition}@{r.offset}"
        if problem:
            bad += 1
            if bad <= 3:
                chk.fail(f"Produce key {m.key!r} (want p{m.partition}@{m.offset}): {problem}")
    if bad > 3:
        chk.fail(f"Produce: {bad - 3} more bad acks (of {len(pending)})")


def to_got(r) -> c.Got:
    kind = {0: "create", 1: "append"}.get(r.timestamp_type, f"type{r.timestamp_type}")
    return c.Got(r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp, kind)


async def drain(chk: c.Checker, cons: AIOKafkaConsumer, want: list[int]) -> dict:
    got: dict[int, list[c.Got]] = {p: [] for p in range(c.PARTITIONS)}
    deadline = c.deadline_s()
    while any(len(got[p]) < want[p] for p in got):
        if time.monotonic() > deadline:
            chk.fail(f"Fetch: timed out; consumed {[len(got[p]) for p in got]}, want {want}")
            break
        batch = await cons.getmany(timeout_ms=500, max_records=20000)
        for tp, recs in batch.items():
            got[tp.partition].extend(to_got(r) for r in recs)
    return got


def new_consumer(**extra) -> AIOKafkaConsumer:
    conf = dict(bootstrap_servers=c.bootstrap(), enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=100,
                max_partition_fetch_bytes=4 * 1024 * 1024)
    conf.update(extra)
    return AIOKafkaConsumer(**conf)


async def consume_assigned(chk: c.Checker, topic: str, parts: list[list[c.Msg]]) -> dict:
    want = [len(x) for x in parts]
    cons = new_consumer(group_id=None)
    await cons.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(c.PARTITIONS)]
        cons.assign(tps)
        await cons.seek_to_beginning(*tps)
        got = await drain(chk, cons, want)
        lo = await cons.beginning_offsets(tps)
        hi = await cons.end_offsets(tps)
        for tp in tps:
            chk.expect_eq((lo.get(tp), hi.get(tp)), (0, want[tp.partition]),
                          f"ListOffsets earliest/latest partition {tp.partition}")
        for p, recs in enumerate(parts):
            tp = TopicPartition(topic, p)
            for ts in c.timestamp_queries(recs):
                exp = c.first_offset_at_or_after(recs, ts)
                res = (await cons.offsets_for_times({tp: ts})).get(tp)
                chk.expect_eq(-1 if res is None else res.offset, exp,
                              f"ListOffsets by timestamp p{p} ts={ts}")
                if res is not None and exp >= 0:
                    chk.expect_eq(res.timestamp, recs[exp].timestamp_ms,
                                  f"ListOffsets by timestamp p{p} ts={ts}: returned timestamp")
    finally:
        await cons.stop()
    return got


async def check_configs(chk: c.Checker, admin: AIOKafkaAdminClient, topic: str,
                        override: bool) -> None:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    configs: dict[str, tuple] = {}
    for resp in responses:
        for res in resp.resources:
            err, msg, _rtype, name, entries = res[0], res[1], res[2], res[3], res[4]
            if err != 0:
                chk.fail(f"DescribeConfigs {name}: error {err} {msg}")
            for e in entries:
                if resp.API_VERSION == 0:  # v0 has is_default instead of a source
                    source = "DEFAULT_CONFIG" if e[3] else "DYNAMIC_TOPIC_CONFIG"
                else:
                    source = c.CONFIG_SOURCE_NAMES.get(e[3], f"source{e[3]}")
                configs[e[0]] = (e[1], source)
    c.check_topic_configs(chk, configs, override)


async def run_codec(codec: str, n: int, note: str = "") -> bool:
    """codec "idempotent": uncompressed, enable_idempotence=True (InitProducerId, producer
    id/epoch/sequence in every batch)."""
    chk = c.Checker(f"aiokafka/{codec}")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, codec)
    override = codec != "none"
    parts = c.plan(n, CLIENT, codec, c.base_timestamp_ms())
    if codec == "idempotent" and c.broker_lacks_api(c.INIT_PRODUCER_ID):
        chk.fail("broker does not advertise InitProducerId (ApiVersions key 22), which every "
                 "idempotent producer needs first")
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=c.bootstrap())
        await admin.start()
        try:
            await create_topic(chk, admin, topic, override)
            await produce(chk, topic, codec, parts, idempotent=codec == "idempotent")
            got = await consume_assigned(chk, topic, parts)
            c.verify_records(chk, parts, got)
            await check_configs(chk, admin, topic, override)
        finally:
            await admin.close()
    except Exception as e:  # noqa: BLE001 - any client exception is a scenario failure
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs{note}, topic {topic}]")


async def run_group(n: int) -> bool:
    name = "aiokafka/group"
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
        admin = AIOKafkaAdminClient(bootstrap_servers=c.bootstrap())
        await admin.start()
        try:
            await create_topic(chk, admin, topic, False)
        finally:
            await admin.close()
        await produce(chk, topic, "none", parts)
        want = [len(x) for x in parts]
        cons = new_consumer(group_id=group, session_timeout_ms=10000)
        await cons.start()
        try:
            cons.subscribe([topic])
            got = await drain(chk, cons, want)
            chk.expect_eq(sorted(tp.partition for tp in cons.assignment()),
                          list(range(c.PARTITIONS)), "group assignment (partitions)")
            await cons.commit()
            committed = [await cons.committed(TopicPartition(topic, p))
                         for p in range(c.PARTITIONS)]
            chk.expect_eq(committed, want, "OffsetFetch after commit (committed offsets)")
        finally:
            await cons.stop()
        c.verify_records(chk, parts, got)
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs, group {group}]")


async def new_topic(chk: c.Checker, variant: str) -> str:
    topic = c.topic_name(CLIENT, variant)
    admin = AIOKafkaAdminClient(bootstrap_servers=c.bootstrap())
    await admin.start()
    try:
        await create_topic(chk, admin, topic, False)
    finally:
        await admin.close()
    return topic


async def read_settled(chk: c.Checker, topic: str, isolation: str, want: list[int]) -> dict:
    """Assign every partition from offset 0 and read until each holds its wanted count, then
    one more second, so records that should be invisible (aborted ones) get a chance to show."""
    cons = new_consumer(group_id=None, isolation_level=isolation)
    await cons.start()
    got: dict[int, list] = {p: [] for p in range(c.PARTITIONS)}
    try:
        tps = [TopicPartition(topic, p) for p in range(c.PARTITIONS)]
        cons.assign(tps)
        await cons.seek_to_beginning(*tps)
        deadline = c.deadline_s()
        settle_until = None
        while settle_until is None or time.monotonic() < settle_until:
            batch = await cons.getmany(timeout_ms=200, max_records=5000)
            for tp, recs in batch.items():
                got[tp.partition].extend(recs)
            if settle_until is None and all(len(got[p]) >= want[p] for p in got):
                settle_until = time.monotonic() + 1.0
            if settle_until is None and time.monotonic() > deadline:
                chk.fail(f"Fetch ({isolation}): timed out with {[len(got[p]) for p in got]} "
                         f"records, want {want}")
                break
    finally:
        await cons.stop()
    return got


async def transactional_producer(name: str) -> AIOKafkaProducer:
    prod = AIOKafkaProducer(bootstrap_servers=c.bootstrap(), linger_ms=5, acks="all",
                            enable_idempotence=True,
                            transactional_id=f"clients-{CLIENT}-{name}-{c.run_id()}")
    await prod.start()  # InitProducerId for the transactional id
    return prod


async def run_transactions(n: int) -> bool:
    """Commit, abort, commit through aiokafka's transactional producer: read_committed sees
    exactly the committed records in order, read_uncommitted all of them."""
    name = "aiokafka/transactions"
    missing = c.missing_txn_apis()
    if missing:
        c.skip(name, f"broker does not advertise {' '.join(missing)}")
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = "?"
    try:
        topic = await new_topic(chk, "txn")
        prod = await transactional_producer("txn")
        try:
            for _phase, commit, recs in c.txn_phases(n):
                await prod.begin_transaction()
                futures = [await prod.send(topic, key=k, value=k, partition=pt)
                           for pt, k in recs]
                if commit:
                    await prod.commit_transaction()
                else:
                    await prod.flush()
                    await prod.abort_transaction()
                res = await asyncio.gather(*futures, return_exceptions=True)
                failed = [r for r in res if isinstance(r, BaseException)]
                chk.expect(not failed, f"{len(failed)} sends failed, first: {failed[:1]}")
        finally:
            await prod.stop()
        for isolation, want in c.txn_expectations(n):
            got = await read_settled(chk, topic, isolation,
                                     [len(want[p]) for p in range(c.PARTITIONS)])
            c.check_txn_read(chk, isolation, want, {p: [r.key for r in got[p]] for p in got})
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[3 x {n} msgs, topic {topic}]")


async def run_eos(n: int) -> bool:
    """Consume-transform-produce with send_offsets_to_transaction: one batch past a third of
    the input is aborted and re-read from the committed offsets. read_committed output: every
    input once, per-key order; read_uncommitted also shows the aborted batch; the group's
    committed offsets end at the input's end."""
    name = "aiokafka/eos-copy"
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
        src = await new_topic(chk, "eos-in")
        dst = await new_topic(chk, "eos-out")
        plain = AIOKafkaProducer(bootstrap_servers=c.bootstrap(), linger_ms=5, acks="all")
        await plain.start()
        try:
            for pt, key, value in records:
                await plain.send(src, key=key, value=value, partition=pt)
            await plain.flush()
        finally:
            await plain.stop()
        prod = await transactional_producer("eos")
        cons = new_consumer(group_id=group, isolation_level="read_committed",
                            session_timeout_ms=10000)
        await cons.start()
        copied = 0
        try:
            cons.subscribe([src])
            deadline = c.deadline_s()
            while copied < n and time.monotonic() < deadline:
                batch = await cons.getmany(timeout_ms=300, max_records=100)
                if not batch:
                    continue
                await prod.begin_transaction()
                offsets = {}
                count = 0
                for tp, recs in batch.items():
                    for r in recs:
                        await prod.send(dst, key=r.key, value=c.eos_transform(r.value),
                                        partition=tp.partition)
                    offsets[tp] = recs[-1].offset + 1
                    count += len(recs)
                await prod.send_offsets_to_transaction(offsets, group)
                if not aborted and copied + count > n // 3:
                    await prod.flush()
                    await prod.abort_transaction()
                    aborted = count
                    for tp in batch:  # re-read what the aborted transaction consumed
                        cons.seek(tp, (await cons.committed(tp)) or 0)
                    continue
                await prod.commit_transaction()
                copied += count
            chk.expect_eq(copied, n, "records copied in committed transactions")
            committed = [await cons.committed(TopicPartition(src, p))
                         for p in range(c.PARTITIONS)]
            chk.expect_eq(committed, want, "group's committed input offsets after the copy")
        finally:
            await prod.stop()
            await cons.stop()
        got = await read_settled(chk, dst, "read_committed", want)
        c.check_eos_output(chk, records, {p: [(r.key, r.value) for r in got[p]] for p in got})
        dirty = await read_settled(chk, dst, "read_uncommitted", want)
        total = sum(len(v) for v in dirty.values())
        chk.expect_eq(total, n + aborted, "read_uncommitted output records (copies + aborted)")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start,
                    f"[{n} msgs, one aborted batch of {aborted}, group {group}]")


async def main() -> int:
    n = c.message_count()
    codec_n = min(n, int(os.environ.get("AIOKAFKA_CODEC_MESSAGES", str(n))))
    ok = True
    for codec in CODECS:
        if codec == "none" or codec_n == n:
            ok &= await run_codec(codec, n)
        else:
            ok &= await run_codec(codec, codec_n, f" (capped from {n} for speed)")
    ok &= await run_codec("idempotent", min(n, 20000), " (enable_idempotence=True)")
    ok &= await run_group(min(n, 20000))
    ok &= await run_transactions(min(n, 1000))
    ok &= await run_eos(min(n, 900))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
