"""One consumer-group member for scenario_groups.py, run as its own OS process.

Owns: consuming one topic in one group with one Python client library (confluent-kafka,
confluent-kafka with group.protocol=consumer, kafka-python, aiokafka) with manual commits, and
reporting what it did on stdout, one line per event:
  ASSIGNED <p,p,...>         the assignment changed (may be empty during an eager rebalance)
  MSG <partition> <offset> <value>   a record was processed
  COMMIT <partition> <next-offset>   a synchronous commit succeeded
  COMMITFAIL <text>          a commit failed (the records may be redelivered; that is allowed)
  CLOSED                     close() returned after a "close" line arrived on stdin
Never: commits anything it has not printed as processed, or judges the broker (the driver does).

usage: groups_worker.py <lib> <bootstrap> <topic> <group> <session_ms>
"""

from __future__ import annotations

import sys
import threading
import time

BATCH_MAX = 100
# Throttle so the group still has a backlog while members are killed and closed.
BATCH_PAUSE_S = 0.2

stop = threading.Event()


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def watch_stdin() -> None:
    for line in sys.stdin:
        if line.strip() == "close":
            break
    stop.set()


class AssignmentPrinter:
    def __init__(self) -> None:
        self.last: list[int] | None = None

    def update(self, partitions: list[int]) -> None:
        now = sorted(partitions)
        if now != self.last:
            self.last = now
            out("ASSIGNED " + ",".join(str(p) for p in now))


def run_confluent(bootstrap: str, topic: str, group: str, session_ms: int, kip848: bool) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}
    if kip848:
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"session.timeout.ms": session_ms, "heartbeat.interval.ms": 1000})
    cons = Consumer(conf)
    cons.subscribe([topic])
    shown = AssignmentPrinter()
    while not stop.is_set():
        msgs = cons.consume(num_messages=BATCH_MAX, timeout=0.3)
        shown.update([tp.partition for tp in cons.assignment()])
        nxt: dict[int, int] = {}
        for m in msgs:
            if m.error():
                continue
            out(f"MSG {m.partition()} {m.offset()} {m.value().decode()}")
            nxt[m.partition()] = m.offset() + 1
        if nxt:
            try:
                cons.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()],
                            asynchronous=False)
                for p, o in nxt.items():
                    out(f"COMMIT {p} {o}")
            except KafkaException as e:
                out(f"COMMITFAIL {e}")
            time.sleep(BATCH_PAUSE_S)
    cons.close()
    out("CLOSED")


def run_kafka_python(bootstrap: str, topic: str, group: str, session_ms: int) -> None:
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    cons = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=session_ms, heartbeat_interval_ms=1000)
    shown = AssignmentPrinter()
    while not stop.is_set():
        batches = cons.poll(timeout_ms=300, max_records=BATCH_MAX)
        shown.update([tp.partition for tp in cons.assignment()])
        offsets = {}
        for tp, recs in batches.items():
            for r in recs:
                out(f"MSG {tp.partition} {r.offset} {r.value.decode()}")
            if recs:
                offsets[tp] = OffsetAndMetadata(recs[-1].offset + 1, "", -1)
        if offsets:
            try:
                cons.commit(offsets)
                for tp, om in offsets.items():
                    out(f"COMMIT {tp.partition} {om.offset}")
            except Exception as e:  # noqa: BLE001 - any commit error means "may redeliver"
                out(f"COMMITFAIL {type(e).__name__}: {e}")
            time.sleep(BATCH_PAUSE_S)
    cons.close()
    out("CLOSED")


def run_aiokafka(bootstrap: str, topic: str, group: str, session_ms: int) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def main() -> None:
        cons = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=session_ms, heartbeat_interval_ms=1000)
        await cons.start()
        shown = AssignmentPrinter()
        while not stop.is_set():
            batches = await cons.getmany(timeout_ms=300, max_records=BATCH_MAX)
            shown.update([tp.partition for tp in cons.assignment()])
            offsets = {}
            for tp, recs in batches.items():
                for r in recs:
                    out(f"MSG {tp.partition} {r.offset} {r.value.decode()}")
                if recs:
                    offsets[tp] = recs[-1].offset + 1
            if offsets:
                try:
                    await cons.commit(offsets)
                    for tp, o in offsets.items():
                        out(f"COMMIT {tp.partition} {o}")
                except Exception as e:  # noqa: BLE001
                    out(f"COMMITFAIL {type(e).__name__}: {e}")
                await asyncio.sleep(BATCH_PAUSE_S)
        await cons.stop()
        out("CLOSED")

    asyncio.run(main())


def main() -> int:
    lib, bootstrap, topic, group, session_ms = sys.argv[1:6]
    threading.Thread(target=watch_stdin, daemon=True).start()
    if lib in ("confluent", "confluent-848"):
        run_confluent(bootstrap, topic, group, int(session_ms), lib == "confluent-848")
    elif lib == "kafka-python":
        run_kafka_python(bootstrap, topic, group, int(session_ms))
    elif lib == "aiokafka":
        run_aiokafka(bootstrap, topic, group, int(session_ms))
    else:
        print(f"unknown lib {lib}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
