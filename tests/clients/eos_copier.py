"""Exactly-once copier (confluent-kafka) for the consume-transform-produce scenario (issue 4
item 2); started, SIGKILLed and restarted by scenario_confluent.py's run_eos_copy.

Owns one loop: consume a batch from the input topic as a group member (read_committed), and in
one transaction produce each record's transform (same key and partition, value prefixed with
`copy|`) to the output topic and commit the consumed offsets with send_offsets_to_transaction.

Never commits offsets outside a transaction, never retries a failed transaction (any error ends
the process non-zero, so the scenario sees it), and never decides when the copy is complete:
the scenario stops it with SIGTERM (finish the current transaction, then exit 0) or SIGKILL.

stdout protocol, one line per event, flushed:
  READY                      after init_transactions
  INFLIGHT <copied>          records of the open transaction are flushed to the broker
                             (not yet committed); <copied> counts committed records so far
  COMMITTED <copied>         after commit_transaction
  ERROR <text>               then exit 1

usage: eos_copier.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP TXN_ID PAUSE_MS
PAUSE_MS is slept between INFLIGHT and committing, so a kill lands inside a transaction.
"""

from __future__ import annotations

import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import common as c

BATCH_MAX = 250


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    bootstrap, in_topic, out_topic, group, txn_id, pause_ms = sys.argv[1:7]
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    cons = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "fetch.wait.max.ms": 100,
    })
    prod = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                     "linger.ms": 5, "transaction.timeout.ms": 60000})
    copied = 0
    try:
        prod.init_transactions(30)
        say("READY")
        cons.subscribe([in_topic])
        while not stop[0]:
            batch = [m for m in cons.consume(num_messages=BATCH_MAX, timeout=0.3)]
            for m in batch:
                if m.error():
                    raise KafkaException(m.error())
            if not batch:
                continue
            prod.begin_transaction()
            next_offsets: dict[int, int] = {}
            for m in batch:
                prod.produce(out_topic, key=m.key(), value=c.eos_transform(m.value()),
                             partition=m.partition())
                next_offsets[m.partition()] = m.offset() + 1
            prod.flush(30)
            say(f"INFLIGHT {copied}")
            time.sleep(int(pause_ms) / 1000)
            prod.send_offsets_to_transaction(
                [TopicPartition(in_topic, p, o) for p, o in sorted(next_offsets.items())],
                cons.consumer_group_metadata(), 30)
            prod.commit_transaction(30)
            copied += len(batch)
            say(f"COMMITTED {copied}")
    except Exception as e:  # noqa: BLE001 - any failure ends the copier; the scenario reports it
        say(f"ERROR {type(e).__name__}: {e}")
        return 1
    finally:
        cons.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
