"""Consumer-group flow with three real consumer processes (issue 3, must-show items 1 and 2).

Owns: the driver. It creates a 6-partition topic and produces keyed records (through
confluent-kafka's admin and producer), starts three members of the library under test as separate
OS processes (groups_worker.py, or groups_worker_kafkajs.js for kafkajs), and checks:
- each of the three members gets two partitions;
- classic protocol: after `kill -9` of one member (no LeaveGroup) its partitions move to the two
  others, no sooner than about the session timeout and not much later;
- a member closing cleanly makes the rebalance immediate (well under the session timeout);
- every produced record is processed by the group at least once (none skipped, values right);
- no record whose offset was committed before a kill or close is delivered to the group after it;
- the final committed offsets equal the end offsets.
KIP-848 (`confluent-848`, group.protocol=consumer) skips the kill part: the session timeout is
the broker's (45 s), not settable by the client; it closes two members cleanly instead.

Never: relaxes a check to let a broker pass; kills any process it did not start.

usage: scenario_groups.py confluent|confluent-848|kafka-python|aiokafka|kafkajs
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import common as c

HERE = os.path.dirname(os.path.abspath(__file__))
PARTITIONS = 6
SESSION_MS = 8000
# A clean LeaveGroup must rebalance in far less than the session timeout. KIP-848 members learn
# of it on their next heartbeat (broker default group.consumer.heartbeat.interval.ms = 5000).
CLEAN_CLOSE_MAX_S = {"classic": 4.0, "consumer": 12.0}
EXTRA_MESSAGES = 60
WAIT_S = 40.0


class Worker:
    """One member process and the events it printed, each stamped with the driver's clock."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[tuple[float, str, list[str]]] = []
        self.stderr: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            with self.lock:
                self.events.append((time.monotonic(), parts[0], parts[1:]))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def snapshot(self) -> list[tuple[float, str, list[str]]]:
        with self.lock:
            return list(self.events)

    def assignment(self) -> list[int] | None:
        for _, kind, args in reversed(self.snapshot()):
            if kind == "ASSIGNED":
                return [int(p) for p in args[0].split(",")] if args else []
        return None

    def closed(self) -> bool:
        return any(kind == "CLOSED" for _, kind, _ in self.snapshot())

    def request_close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def worker_argv(lib: str, topic: str, group: str) -> list[str]:
    if lib == "kafkajs":
        return ["node", os.path.join(HERE, "groups_worker_kafkajs.js"), c.bootstrap(), topic, group,
                str(SESSION_MS)]
    return [sys.executable, os.path.join(HERE, "groups_worker.py"), lib, c.bootstrap(), topic,
            group, str(SESSION_MS)]


class Produced:
    """Records produced so far: value by (partition, offset), from delivery reports."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.values: dict[tuple[int, int], str] = {}
        self.errors: list[str] = []
        self.count = 0
        self.producer = Producer({"bootstrap.servers": c.bootstrap(), "linger.ms": 5})

    def _report(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.values[(msg.partition(), msg.offset())] = msg.value().decode()

    def send(self, n: int) -> None:
        for _ in range(n):
            i = self.count
            self.count += 1
            self.producer.produce(self.topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                                  partition=i % PARTITIONS, on_delivery=self._report)
            self.producer.poll(0)
        self.producer.flush(30)

    def end_offsets(self) -> list[int]:
        ends = [0] * PARTITIONS
        for p, o in self.values:
            ends[p] = max(ends[p], o + 1)
        return ends


def wait_until(pred, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def assignments(ws: list[Worker]) -> list[list[int] | None]:
    return [w.assignment() for w in ws]


def balanced(ws: list[Worker], each: int) -> bool:
    got = assignments(ws)
    if any(a is None or len(a) != each for a in got):
        return False
    return sorted(p for a in got for p in a) == list(range(PARTITIONS))  # type: ignore[union-attr]


def committed_before(ws: list[Worker], t_cut: float, gone: Worker) -> dict[int, int]:
    """Highest offset committed per partition that the group knew of at the cut: every commit
    the departing member printed, and every commit the others printed before t_cut."""
    best: dict[int, int] = {}
    for w in ws:
        for t, kind, args in w.snapshot():
            if kind == "COMMIT" and (w is gone or t < t_cut):
                p, o = int(args[0]), int(args[1])
                best[p] = max(best.get(p, 0), o)
    return best


def check_no_redelivery(chk: c.Checker, survivors: list[Worker], t_cut: float,
                        committed: dict[int, int], label: str) -> int:
    """Records a survivor received after its first assignment change following the cut must lie
    at or after the offset committed before the cut. Returns how many records were checked."""
    bad: list[str] = []
    checked = 0
    for w in survivors:
        after = False
        for t, kind, args in w.snapshot():
            if kind == "ASSIGNED" and t > t_cut:
                after = True
            if after and kind == "MSG":
                p, o = int(args[0]), int(args[1])
                checked += 1
                if o < committed.get(p, 0):
                    bad.append(f"{w.name} got p{p}@{o} (committed {committed[p]})")
    chk.expect(not bad, f"{label}: {len(bad)} committed records delivered again, e.g. {bad[:5]}")
    return checked


def check_coverage(chk: c.Checker, ws: list[Worker], produced: Produced) -> None:
    seen: dict[tuple[int, int], str] = {}
    for w in ws:
        for _, kind, args in w.snapshot():
            if kind == "MSG":
                seen[(int(args[0]), int(args[1]))] = args[2]
    missing = sorted(k for k in produced.values if k not in seen)
    chk.expect(not missing, f"records never processed by the group: {len(missing)} of "
               f"{len(produced.values)}, e.g. {missing[:5]}")
    wrong = [(k, seen[k], v) for k, v in produced.values.items() if k in seen and seen[k] != v]
    chk.expect(not wrong, f"records with the wrong value (key, got, want): {wrong[:5]}")
    unknown = sorted(k for k in seen if k not in produced.values)
    chk.expect(not unknown, f"records processed that were never produced: {unknown[:5]}")


def committed_offsets(topic: str, group: str) -> list[int]:
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": group,
                     "enable.auto.commit": False})
    try:
        tps = cons.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return [tp.offset for tp in tps]
    finally:
        cons.close()


def clean_close(chk: c.Checker, ws: list[Worker], leaving: Worker, protocol: str,
                cuts: list) -> None:
    survivors = [w for w in ws if w is not leaving]
    each = PARTITIONS // len(survivors)
    t_cut = time.monotonic()
    leaving.request_close()
    if not wait_until(lambda: balanced(survivors, each), WAIT_S):
        chk.fail(f"after {leaving.name} closed: assignments {assignments(survivors)}, want "
                 f"{each} partitions each covering all {PARTITIONS}")
        return
    took = time.monotonic() - t_cut
    limit = CLEAN_CLOSE_MAX_S[protocol]
    chk.expect(took <= limit, f"clean close of {leaving.name}: rebalance took {took:.1f}s, want "
               f"<= {limit}s (session timeout {SESSION_MS / 1000}s)")
    chk.expect(wait_until(leaving.closed, 10), f"{leaving.name} never printed CLOSED")
    gone_commits = committed_before([leaving], t_cut, leaving)
    cuts.append((survivors, t_cut, committed_before(ws, t_cut, leaving),
                        f"after clean close of {leaving.name}"))
    print(f"  clean close of {leaving.name}: survivors rebalanced in {took:.1f}s; "
          f"its commits {gone_commits}", flush=True)


def kill_member(chk: c.Checker, ws: list[Worker], victim: Worker, cuts: list) -> None:
    survivors = [w for w in ws if w is not victim]
    t_cut = time.monotonic()
    victim.kill9()
    if not wait_until(lambda: balanced(survivors, PARTITIONS // 2), SESSION_MS / 1000 + 25):
        chk.fail(f"after kill -9 of {victim.name}: assignments {assignments(survivors)}, want "
                 f"3 partitions each covering all {PARTITIONS}")
        return
    took = time.monotonic() - t_cut
    low = SESSION_MS / 1000 / 2
    chk.expect(took >= low, f"kill -9 of {victim.name}: partitions moved after {took:.1f}s, want "
               f">= {low}s (only the session timeout may expire a silent member)")
    gone_commits = committed_before([victim], t_cut, victim)
    cuts.append((survivors, t_cut, committed_before(ws, t_cut, victim),
                        f"after kill -9 of {victim.name}"))
    print(f"  kill -9 of {victim.name}: partitions moved after {took:.1f}s; "
          f"its commits {gone_commits}", flush=True)


def wait_committed(ws: list[Worker], ends: list[int]) -> bool:
    def done() -> bool:
        best = [0] * PARTITIONS
        for w in ws:
            for _, kind, args in w.snapshot():
                if kind == "COMMIT":
                    p = int(args[0])
                    best[p] = max(best[p], int(args[1]))
        return best == ends
    return wait_until(done, WAIT_S)


def run(lib: str, n: int) -> bool:
    protocol = "consumer" if lib == "confluent-848" else "classic"
    name = f"groups/{lib}"
    ok, reason = c.group_apis_available()
    if not ok:
        c.skip(name, reason)
        return True
    chk = c.Checker(name)
    start = time.monotonic()
    topic = c.topic_name(f"groups-{lib}", "flow")
    group = f"clients-groups-{lib}-{c.run_id()}"
    ws: list[Worker] = []
    # (survivors, cut time, offsets committed before the cut, label), checked once all is consumed
    cuts: list = []
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap()})
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS,
                                      replication_factor=1)])[topic].result(30)
        produced = Produced(topic)
        produced.send(n)
        ws = [Worker(f"member{i}", worker_argv(lib, topic, group)) for i in range(3)]
        if not wait_until(lambda: balanced(ws, 2), WAIT_S):
            chk.fail(f"three members: assignments {assignments(ws)}, want 2 partitions each "
                     f"covering all {PARTITIONS}")
            raise RuntimeError("group never balanced")
        print(f"  three members balanced after {time.monotonic() - start:.1f}s: "
              f"{assignments(ws)}", flush=True)
        time.sleep(1.0)  # let every member process and commit a little
        produced.send(EXTRA_MESSAGES)
        if protocol == "classic":
            kill_member(chk, ws, ws[0], cuts)
        else:
            clean_close(chk, ws, ws[0], protocol, cuts)
        produced.send(EXTRA_MESSAGES)
        live = ws[1:]
        clean_close(chk, live, live[0], protocol, cuts)
        produced.send(EXTRA_MESSAGES)
        chk.expect(not produced.errors, f"produce errors: {produced.errors[:3]}")
        ends = produced.end_offsets()
        last = live[1]
        chk.expect(wait_committed(ws, ends), "the last member's commits never reached the end "
                   f"offsets {ends}")
        last.request_close()
        chk.expect(wait_until(last.closed, 15), f"{last.name} never printed CLOSED")
        check_coverage(chk, ws, produced)
        for survivors, t_cut, committed, label in cuts:
            checked = check_no_redelivery(chk, survivors, t_cut, committed, label)
            print(f"  {label}: {checked} later records checked against {committed}", flush=True)
        chk.expect_eq(committed_offsets(topic, group), ends, "final committed offsets (OffsetFetch)")
        fails = sum(1 for w in ws for _, kind, _ in w.snapshot() if kind == "COMMITFAIL")
        print(f"  {produced.count} records, {fails} failed commits (allowed during rebalances)",
              flush=True)
    except (KafkaException, RuntimeError) as e:
        chk.fail(f"{type(e).__name__}: {e}")
    finally:
        for w in ws:
            w.stop()
    if not chk.ok:
        for w in ws:
            for line in w.stderr[-5:]:
                print(f"  [{w.name} stderr] {line}", flush=True)
    return c.report(chk, time.monotonic() - start, f"[topic {topic}, group {group}]")


def main() -> int:
    libs = sys.argv[1:] or ["confluent"]
    n = min(c.message_count(6000), 6000)
    ok = True
    for lib in libs:
        ok &= run(lib, n)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
