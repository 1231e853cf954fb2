"""confluent-kafka (librdkafka) scenario: admin create/describe, produce per codec, consume by
manual assignment, offsets_for_times, an optional consumer-group pass, and issue 4's
idempotence and transactions: retried Produce requests through faultproxy.py, commit/abort with
both isolation levels, and an exactly-once copy by eos_copier.py that is SIGKILLed once.

Owns only what it does through confluent-kafka; the plan and the checks live in common.py.
Never relaxes a check; every failure names the request and what differed.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

import common as c
import faultproxy

CLIENT = "confluent"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def admin_client() -> AdminClient:
    return AdminClient({"bootstrap.servers": c.bootstrap()})


def create_topic(chk: c.Checker, admin: AdminClient, topic: str, override: bool,
                 configs: dict | None = None) -> None:
    cfg = {"retention.ms": c.OVERRIDE_RETENTION_MS} if override else {}
    cfg.update(configs or {})
    fut = admin.create_topics([NewTopic(topic, num_partitions=c.PARTITIONS,
                                        replication_factor=1, config=cfg)],
                              operation_timeout=30, request_timeout=30)[topic]
    fut.result(timeout=30)
    # Creating it again must fail with TOPIC_ALREADY_EXISTS.
    again = admin.create_topics([NewTopic(topic, num_partitions=c.PARTITIONS,
                                          replication_factor=1)], request_timeout=30)[topic]
    try:
        again.result(timeout=30)
        chk.fail("CreateTopics of an existing topic succeeded; want TOPIC_ALREADY_EXISTS")
    except KafkaException as e:
        code = e.args[0].code()
        chk.expect_eq(code, KafkaError.TOPIC_ALREADY_EXISTS,
                      f"CreateTopics existing topic error ({e.args[0]})")
    wait_partitions(chk, admin, topic)


def wait_partitions(chk: c.Checker, admin: AdminClient, topic: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        md = admin.list_topics(topic=topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == c.PARTITIONS and all(
                p.leader >= 0 for p in t.partitions.values()):
            return
        if time.monotonic() > deadline:
            chk.fail(f"Metadata for {topic}: {t.error if t else 'missing'}, "
                     f"partitions={len(t.partitions) if t else None}, want {c.PARTITIONS} with leaders")
            return
        time.sleep(0.2)


def produce(chk: c.Checker, topic: str, codec: str, parts: list[list[c.Msg]],
            idempotent: bool = False, extra: dict | None = None,
            transient: tuple = ()) -> None:
    """extra overrides the producer config (e.g. bootstrap.servers of a proxy, timeouts);
    transient lists further error_cb codes that librdkafka retries by itself."""
    bad: list[str] = []
    fatal: list[str] = []

    def on_error(err):
        # Transport hiccups are retried by librdkafka; anything else (e.g. a fatal idempotence
        # error when InitProducerId is refused) means the produce phase failed.
        if err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN) + transient:
            fatal.append(f"{err.name()}: {err.str()}")

    conf = {
        "bootstrap.servers": c.bootstrap(),
        "compression.type": "none" if idempotent else codec,
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
        "queue.buffering.max.kbytes": 1048576,
        "enable.idempotence": idempotent,
        "acks": "all",
        "message.timeout.ms": 60000,
        "error_cb": on_error,
    }
    conf.update(extra or {})
    p = Producer(conf)

    purged = [0]

    def on_delivery(err, msg):
        if err is not None:
            if err.code() == KafkaError._PURGE_QUEUE:
                purged[0] += 1  # librdkafka purges its queue after a fatal producer error
            else:
                bad.append(f"delivery error {err.name()}: {err.str()} for key {msg.key()!r}")
            return
        seq = c.key_seq(msg.key(), msg.partition())
        if seq is None or msg.offset() != seq:
            bad.append(f"delivery report key {msg.key()!r} at partition {msg.partition()} "
                       f"offset {msg.offset()}, want offset {seq}")

    left = -1
    try:
        for m in c.interleaved(parts):
            if fatal:
                break
            while True:
                try:
                    p.produce(topic, value=m.value, key=m.key, partition=m.partition,
                              headers=list(m.headers), timestamp=m.timestamp_ms,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        deadline = time.monotonic() + 60
        left = p.flush(1)
        while left and time.monotonic() < deadline and not fatal:
            left = p.flush(1)
    except (KafkaException, SystemError) as e:
        # A fatal producer error (e.g. idempotence refused) is raised from poll/flush; the
        # SystemError wraps it when it happens inside a delivery callback.
        fatal.append(str(e.__cause__ or e))
    if purged[0]:
        chk.fail(f"Produce: {purged[0]} messages purged by librdkafka after a fatal producer "
                 "error (librdkafka's FATAL line on stderr says why)")
    for e in fatal[:3]:
        chk.fail(f"Produce: producer error {e}")
    if not fatal:
        chk.expect_eq(left, 0, "Produce: messages still undelivered after flush")
    for b in bad[:c.MAX_DIFFS_SHOWN]:
        chk.fail(f"Produce: {b}")
    if len(bad) > c.MAX_DIFFS_SHOWN:
        chk.fail(f"Produce: {len(bad) - c.MAX_DIFFS_SHOWN} more bad delivery reports")


def to_got(m) -> c.Got:
    ts_type, ts = m.timestamp()
    kind = {1: "create", 2: "append"}.get(ts_type, f"type{ts_type}")
    headers = tuple((k, v if v is not None else None) for k, v in (m.headers() or []))
    return c.Got(m.partition(), m.offset(), m.key(), m.value(), headers, ts, kind)


def new_consumer(group: str, extra: dict | None = None) -> Consumer:
    conf = {
        "bootstrap.servers": c.bootstrap(),
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra or {})
    return Consumer(conf)


def consume_assigned(chk: c.Checker, topic: str, want: list[int],
                     extra: dict | None = None) -> dict[int, list[c.Got]]:
    cons = new_consumer(f"unused-{topic}", extra)
    got: dict[int, list[c.Got]] = {p: [] for p in range(c.PARTITIONS)}
    try:
        cons.assign([TopicPartition(topic, p, 0) for p in range(c.PARTITIONS)])
        deadline = c.deadline_s()
        while any(len(got[p]) < want[p] for p in got):
            if time.monotonic() > deadline:
                chk.fail("Fetch: timed out; consumed per partition "
                         f"{[len(got[p]) for p in got]}, want {want}")
                break
            for m in cons.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    chk.fail(f"Fetch error: {m.error()}")
                    return got
                got[m.partition()].append(to_got(m))
        check_watermarks(chk, cons, topic, want)
    finally:
        cons.close()
    return got


def check_watermarks(chk: c.Checker, cons: Consumer, topic: str, want: list[int]) -> None:
    for p in range(c.PARTITIONS):
        lo, hi = cons.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        chk.expect_eq((lo, hi), (0, want[p]), f"ListOffsets earliest/latest partition {p}")


def check_offsets_for_times(chk: c.Checker, topic: str, parts: list[list[c.Msg]]) -> None:
    cons = new_consumer(f"unused-oft-{topic}")
    try:
        for p, recs in enumerate(parts):
            for ts in c.timestamp_queries(recs):
                want = c.first_offset_at_or_after(recs, ts)
                res = cons.offsets_for_times([TopicPartition(topic, p, ts)], timeout=10)
                got = res[0].offset
                if res[0].error:
                    chk.fail(f"ListOffsets p{p} ts={ts}: error {res[0].error}")
                chk.expect_eq(got, want, f"ListOffsets by timestamp p{p} ts={ts}")
    finally:
        cons.close()


def check_configs(chk: c.Checker, admin: AdminClient, topic: str, override: bool) -> None:
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res], request_timeout=30)[res].result(timeout=30)
    # ConfigEntry.source is a plain int (Kafka's ConfigSource id) in confluent-kafka 2.x.
    configs = {name: (e.value, source_name(e.source)) for name, e in entries.items()}
    c.check_topic_configs(chk, configs, override)
    ret = entries.get("retention.ms")
    if override and ret is not None:
        chk.expect(not ret.is_default, "DescribeConfigs retention.ms override reported is_default")


def source_name(source) -> str:
    if hasattr(source, "name"):
        return source.name
    return c.CONFIG_SOURCE_NAMES.get(int(source), f"source{source}")


def run_codec(codec: str, n: int, idempotent: bool = False) -> bool:
    chk = c.Checker(f"confluent-kafka/{codec}")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, codec)
    override = codec != "none"
    parts = c.plan(n, CLIENT, codec, c.base_timestamp_ms())
    if codec == "idempotent" and c.broker_lacks_api(c.INIT_PRODUCER_ID):
        chk.fail("broker does not advertise InitProducerId (ApiVersions key 22), which every "
                 "idempotent producer needs first")
    try:
        admin = admin_client()
        create_topic(chk, admin, topic, override)
        check_configs(chk, admin, topic, override)
        before = len(chk.failures)
        produce(chk, topic, codec, parts, idempotent)
        if len(chk.failures) > before:
            return c.report(chk, time.monotonic() - start, "(consume skipped: produce failed)")
        got = consume_assigned(chk, topic, [len(x) for x in parts])
        c.verify_records(chk, parts, got)
        check_offsets_for_times(chk, topic, parts)
    except Exception as e:  # noqa: BLE001 - any client exception is a scenario failure
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs, topic {topic}]")


def run_small_fetch(n: int) -> bool:
    """Fetch limits far below one batch: Kafka still returns the first whole batch (KIP-74), so
    the consumer makes progress and reads exactly what was produced."""
    chk = c.Checker("confluent-kafka/small-fetch")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "small-fetch")
    parts = c.plan(n, CLIENT, "small-fetch", c.base_timestamp_ms())
    try:
        admin = admin_client()
        create_topic(chk, admin, topic, False)
        before = len(chk.failures)
        produce(chk, topic, "none", parts)
        if len(chk.failures) > before:
            return c.report(chk, time.monotonic() - start, "(consume skipped: produce failed)")
        got = consume_assigned(chk, topic, [len(x) for x in parts],
                               {"fetch.max.bytes": 1024, "fetch.message.max.bytes": 1024,
                                "message.max.bytes": 1000})
        c.verify_records(chk, parts, got)
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start,
                    f"[{n} msgs, fetch.max.bytes=1024, topic {topic}]")


def produce_one(p: Producer, topic: str, **kw) -> tuple:
    """Produce one record to partition 0 and wait for its delivery report: (error, offset, ts)."""
    out: list = []
    p.produce(topic, partition=0, on_delivery=lambda err, msg: out.append(
        (err, msg.offset(), msg.timestamp())), **kw)
    p.flush(30)
    return out[0] if out else ("no delivery report within 30 s", None, None)


def read_partition0(chk: c.Checker, topic: str, count: int) -> list:
    cons = new_consumer(f"unused-{topic}")
    out: list = []
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            for m in cons.consume(num_messages=100, timeout=0.5):
                if m.error():
                    chk.fail(f"Fetch error: {m.error()}")
                    return out
                out.append(m)
    finally:
        cons.close()
    return out


EDGE_RECORDS = [
    dict(key=None, value=b"null key"),
    dict(key=b"null value", value=None),
    dict(key=b"", value=b""),
    dict(key=b"near limit", value=b"x" * 15000),
    dict(key=bytes(range(256)), value=bytes(range(256)) * 4,
         headers=[("bin", bytes(range(256))), ("bin", b"")]),
]


def run_edge() -> bool:
    """Null/empty keys and values, binary data, and max.message.bytes enforcement: a record over
    the topic's limit gets MESSAGE_TOO_LARGE and takes no offset."""
    chk = c.Checker("confluent-kafka/edge-records")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "edge")
    try:
        admin = admin_client()
        create_topic(chk, admin, topic, False, {"max.message.bytes": "20000"})
        p = Producer({"bootstrap.servers": c.bootstrap(), "linger.ms": 0,
                      "enable.idempotence": False, "acks": "all", "message.timeout.ms": 30000})
        for i, rec in enumerate(EDGE_RECORDS):
            err, off, _ = produce_one(p, topic, **rec)
            chk.expect(err is None and off == i, f"Produce edge record {i}: error {err}, "
                       f"offset {off}, want offset {i}")
        err, off, _ = produce_one(p, topic, key=b"too big", value=b"y" * 30000)
        code = err.code() if isinstance(err, KafkaError) else err
        chk.expect_eq(code, KafkaError.MSG_SIZE_TOO_LARGE,
                      f"Produce 30000-byte record to topic with max.message.bytes=20000 "
                      f"(error {err}, offset {off})")
        err, off, _ = produce_one(p, topic, key=b"after", value=b"after")
        chk.expect(err is None and off == len(EDGE_RECORDS),
                   f"Produce after rejected record: error {err}, offset {off}, "
                   f"want offset {len(EDGE_RECORDS)} (a rejected record takes no offset)")
        want = EDGE_RECORDS + [dict(key=b"after", value=b"after")]
        got = read_partition0(chk, topic, len(want))
        chk.expect_eq(len(got), len(want), "edge records read back")
        for i, (w, m) in enumerate(zip(want, got)):
            g = dict(key=m.key(), value=m.value())
            if "headers" in w:
                g["headers"] = [(k, v if v is not None else b"") for k, v in m.headers() or []]
            w_cmp = dict(w)
            if g != w_cmp or m.offset() != i:
                chk.fail(f"edge record {i}: got offset {m.offset()} "
                         f"{ {k: c.short(v) if isinstance(v, bytes) else v for k, v in g.items()} }"
                         f", want {i} { {k: c.short(v) if isinstance(v, bytes) else v for k, v in w.items()} }")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[topic {topic}]")


def run_log_append_time(n: int) -> bool:
    """message.timestamp.type=LogAppendTime: the broker replaces producer timestamps with its
    append time and marks them as such; DescribeConfigs shows the override."""
    chk = c.Checker("confluent-kafka/log-append-time")
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "lat")
    parts = c.plan(n, CLIENT, "lat", c.base_timestamp_ms() - 86_400_000)
    try:
        admin = admin_client()
        create_topic(chk, admin, topic, False, {"message.timestamp.type": "LogAppendTime"})
        before_ms = int(time.time() * 1000)
        produce(chk, topic, "lz4", parts)
        after_ms = int(time.time() * 1000)
        got = consume_assigned(chk, topic, [len(x) for x in parts])
        c.verify_records(chk, parts, got, check_timestamps=False)
        for p, recs in got.items():
            bad = [g for g in recs if g.timestamp_type != "append"
                   or not before_ms - 1000 <= g.timestamp_ms <= after_ms + 1000]
            if bad:
                chk.fail(f"partition {p}: {len(bad)} records not LogAppendTime within "
                         f"[{before_ms}, {after_ms}], first: type {bad[0].timestamp_type} "
                         f"ts {bad[0].timestamp_ms}")
        res = ConfigResource(ResourceType.TOPIC, topic)
        e = admin.describe_configs([res], request_timeout=30)[res].result(timeout=30).get(
            "message.timestamp.type")
        chk.expect_eq((e.value, source_name(e.source)) if e else None,
                      ("LogAppendTime", "DYNAMIC_TOPIC_CONFIG"),
                      "DescribeConfigs message.timestamp.type (value, source)")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs, topic {topic}]")


def run_idempotent_retries(n: int) -> bool:
    """Issue 4 item 1: an idempotent producer behind faultproxy. Some Produce responses are
    lost (connection closed after the broker applied the write) or held past
    request.timeout.ms, so librdkafka resends batches the broker already has. The broker must
    answer those with the original offsets: every delivery report and every record read back
    sits at its planned offset, each key exactly once, in order, no gaps."""
    name = "confluent-kafka/idempotent-retries"
    addrs = c.proxy_addresses()
    if addrs is None:
        c.skip(name, c.PROXY_SKIP_REASON)
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "idem-retries")
    parts = c.plan(n, CLIENT, "idem-retries", c.base_timestamp_ms())
    proxy = faultproxy.FaultProxy(faultproxy.parse_addr(addrs[0]),
                                  faultproxy.parse_addr(addrs[1]),
                                  every=4, max_faults=10, delay_s=1.5).start()
    try:
        admin = admin_client()
        create_topic(chk, admin, topic, False)
        before = len(chk.failures)
        produce(chk, topic, "none", parts, idempotent=True,
                extra={"bootstrap.servers": addrs[0], "request.timeout.ms": 1000,
                       "message.timeout.ms": 120000, "retry.backoff.ms": 50,
                       "batch.num.messages": 200, "linger.ms": 5,
                       "log.connection.close": False},
                transient=(KafkaError._TIMED_OUT, KafkaError._TIMED_OUT_QUEUE))
        if len(chk.failures) > before:
            return c.report(chk, time.monotonic() - start, "(consume skipped: produce failed)")
        got = consume_assigned(chk, topic, [len(x) for x in parts])
        c.verify_records(chk, parts, got)
        chk.expect(proxy.drops >= 2 and proxy.delays >= 2,
                   f"only {proxy.drops} dropped and {proxy.delays} delayed Produce responses "
                   f"(of {proxy.produce_requests} Produce requests); the scenario proves nothing")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    finally:
        proxy.close()
    return c.report(chk, time.monotonic() - start,
                    f"[{n} msgs, {proxy.drops} responses dropped, {proxy.delays} delayed "
                    f"past request.timeout.ms=1000, {proxy.produce_requests} Produce requests, "
                    f"topic {topic}]")


def drain_to_end(chk: c.Checker, topic: str, isolation: str, want: list[int]) -> dict:
    """Read every partition until it holds the wanted number of records, then keep reading one
    more second so that records which should not be visible (aborted ones) show up too."""
    cons = new_consumer(f"unused-{topic}", {"isolation.level": isolation})
    got: dict[int, list] = {p: [] for p in range(c.PARTITIONS)}
    try:
        cons.assign([TopicPartition(topic, p, 0) for p in range(c.PARTITIONS)])
        deadline = c.deadline_s()
        settle_until = None
        while settle_until is None or time.monotonic() < settle_until:
            for m in cons.consume(num_messages=1000, timeout=0.2):
                if m.error():
                    chk.fail(f"Fetch ({isolation}) error: {m.error()}")
                    return got
                got[m.partition()].append(m)
            if settle_until is None and all(len(got[p]) >= want[p] for p in got):
                settle_until = time.monotonic() + 1.0
            if settle_until is None and time.monotonic() > deadline:
                chk.fail(f"Fetch ({isolation}): timed out with {[len(got[p]) for p in got]} "
                         f"records, want {want}")
                return got
    finally:
        cons.close()
    return got


def run_transactions(n: int) -> bool:
    """Commit, abort, commit: read_committed sees exactly the committed records in order,
    read_uncommitted sees all of them; the aborted ones never reach a read_committed reader."""
    name = "confluent-kafka/transactions"
    missing = c.missing_txn_apis()
    if missing:
        c.skip(name, f"broker does not advertise {' '.join(missing)}")
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = c.topic_name(CLIENT, "txn")
    try:
        admin = admin_client()
        create_topic(chk, admin, topic, False)
        p = Producer({"bootstrap.servers": c.bootstrap(), "linger.ms": 5,
                      "transactional.id": f"clients-{CLIENT}-txn-{c.run_id()}"})
        p.init_transactions(30)
        for phase, commit, recs in c.txn_phases(n):
            p.begin_transaction()
            for part, key in recs:
                p.produce(topic, key=key, value=key, partition=part)
            if commit:
                p.commit_transaction(30)
            else:
                p.flush(30)
                p.abort_transaction(30)
        for isolation, want in c.txn_expectations(n):
            got = drain_to_end(chk, topic, isolation,
                               [len(want[pt]) for pt in range(c.PARTITIONS)])
            c.check_txn_read(chk, isolation, want,
                             {pt: [m.key() for m in got[pt]] for pt in got})
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[3 x {n} msgs, topic {topic}]")


class Copier:
    """One eos_copier.py process; its stdout lines are collected by a reader thread."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                                   "eos_copier.py"), *args],
                                     stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.committed = 0
        self.errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_for(self, pred, timeout_s: float) -> str | None:
        """The first stdout line for which pred(line) holds; None on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    return None
                continue
            if line.startswith("COMMITTED "):
                self.committed = int(line.split()[1])
            if line.startswith("ERROR "):
                self.errors.append(line)
            if pred(line):
                return line
        return None


def run_eos_copy(n: int) -> bool:
    """Issue 4 item 2 (scaled down): a consume-transform-produce copier using transactions and
    send_offsets_to_transaction copies n records; it is SIGKILLed once with a transaction open
    (its records already on the broker) and restarted. A read_committed reader of the output
    must see every input exactly once in per-key order; a read_uncommitted reader must see
    more (the aborted transaction's records), proving the kill hit an open transaction; the
    group's committed offsets must end at the input's end offsets."""
    name = "confluent-kafka/eos-copy"
    missing = c.missing_txn_apis()
    if missing:
        c.skip(name, f"broker does not advertise {' '.join(missing)}")
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    src = c.topic_name(CLIENT, "eos-in")
    dst = c.topic_name(CLIENT, "eos-out")
    group = f"clients-{CLIENT}-eos-{c.run_id()}"
    args = [c.bootstrap(), src, dst, group, f"clients-{CLIENT}-eos-{c.run_id()}"]
    records = c.eos_input(n)
    copiers: list[Copier] = []
    try:
        admin = admin_client()
        create_topic(chk, admin, src, False)
        create_topic(chk, admin, dst, False)
        p = Producer({"bootstrap.servers": c.bootstrap(), "linger.ms": 5, "acks": "all"})
        for part, key, value in records:
            p.produce(src, key=key, value=value, partition=part)
        chk.expect_eq(p.flush(30), 0, "input records undelivered after flush")
        first = Copier(args + ["200"])
        copiers.append(first)
        killed_at = first.wait_for(lambda ln: ln.startswith("ERROR ") or (
            ln.startswith("INFLIGHT ") and int(ln.split()[1]) >= n // 3), 60)
        if killed_at is None or killed_at.startswith("ERROR "):
            chk.fail(f"first copier never had a transaction open after {n // 3} copied records "
                     f"(last committed {first.committed}): {killed_at}")
            return c.report(chk, time.monotonic() - start)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        done_before_kill = first.committed
        second = Copier(args + ["0"])
        copiers.append(second)
        line = second.wait_for(lambda ln: ln.startswith("ERROR ") or (
            ln.startswith("COMMITTED ") and int(ln.split()[1]) >= n - done_before_kill), 90)
        if line is None or line.startswith("ERROR "):
            chk.fail(f"restarted copier stopped at {second.committed} of "
                     f"{n - done_before_kill} records: {line}")
        second.proc.send_signal(signal.SIGTERM)
        chk.expect_eq(second.proc.wait(30), 0, "restarted copier exit status after SIGTERM")
        for e in first.errors + second.errors:
            chk.fail(f"copier: {e}")
        want = c.eos_want_counts(records)
        got = drain_to_end(chk, dst, "read_committed", want)
        c.check_eos_output(chk, records, {pt: [(m.key(), m.value()) for m in got[pt]]
                                        for pt in got})
        dirty = drain_to_end(chk, dst, "read_uncommitted", want)
        total_dirty = sum(len(v) for v in dirty.values())
        chk.expect(total_dirty > n, f"read_uncommitted saw {total_dirty} records, want more "
                   f"than {n} (the killed copier's open transaction should have left records)")
        cons = new_consumer(group)
        try:
            committed = cons.committed([TopicPartition(src, pt) for pt in range(c.PARTITIONS)],
                                       timeout=10)
            chk.expect_eq([tp.offset for tp in committed], want,
                          "group's committed input offsets after the copy")
        finally:
            cons.close()
        note = (f"[{n} msgs, killed with a transaction open after {done_before_kill} "
                f"committed, read_uncommitted saw {total_dirty}]")
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
        note = ""
    finally:
        for cp in copiers:
            if cp.proc.poll() is None:
                cp.proc.kill()
                cp.proc.wait(10)
    return c.report(chk, time.monotonic() - start, note)


def run_group(n: int) -> bool:
    name = "confluent-kafka/group"
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
        create_topic(chk, admin, topic, False)
        produce(chk, topic, "none", parts)
        want = [len(x) for x in parts]
        got: dict[int, list[c.Got]] = {p: [] for p in range(c.PARTITIONS)}
        errors: list[str] = []
        cons = new_consumer(group, {"session.timeout.ms": 10000,
                                    "enable.auto.offset.store": True,
                                    "error_cb": lambda e: errors.append(str(e))})
        try:
            cons.subscribe([topic])
            deadline = c.deadline_s()
            while any(len(got[p]) < want[p] for p in got):
                if time.monotonic() > deadline:
                    chk.fail("group consume timed out; consumed "
                             f"{[len(got[p]) for p in got]}, want {want}")
                    break
                for m in cons.consume(num_messages=10000, timeout=0.5):
                    if m.error():
                        chk.fail(f"group consume error: {m.error()}")
                        continue
                    got[m.partition()].append(to_got(m))
            chk.expect_eq(sorted(a.partition for a in cons.assignment()),
                          list(range(c.PARTITIONS)), "group assignment (partitions)")
            if chk.ok:
                cons.commit(asynchronous=False)
                committed = cons.committed(
                    [TopicPartition(topic, p) for p in range(c.PARTITIONS)], timeout=10)
                chk.expect_eq([tp.offset for tp in committed], want,
                              "OffsetFetch after commit (committed offsets)")
        finally:
            cons.close()
        for e in errors[:3]:
            chk.fail(f"consumer error_cb: {e}")
        c.verify_records(chk, parts, got)
    except Exception as e:  # noqa: BLE001
        chk.fail(f"exception: {type(e).__name__}: {e}")
    return c.report(chk, time.monotonic() - start, f"[{n} msgs, group {group}]")


def main() -> int:
    n = c.message_count()
    ok = True
    for codec in CODECS:
        ok &= run_codec(codec, n)
    # enable.idempotence=true: InitProducerId plus producer id/epoch/sequence in every batch.
    ok &= run_small_fetch(min(n, 20000))
    ok &= run_edge()
    ok &= run_log_append_time(min(n, 3000))
    ok &= run_codec("idempotent", min(n, 20000), idempotent=True)
    # Not scaled by MESSAGES: fewer records would not make enough Produce requests to fault.
    ok &= run_idempotent_retries(20000)
    ok &= run_transactions(min(n, 3000))
    ok &= run_eos_copy(min(n, 3000))
    ok &= run_group(min(n, 20000))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
