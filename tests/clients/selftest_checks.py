"""Self-test of common.py's checks, run by run.sh before the clients: proves each check fails
when a broker would misbehave (lost, reordered, altered or duplicated records, wrong timestamps,
wrong ListOffsets answers, wrong config sources). Needs no broker.

Owns nothing but these assertions; never touches the network.
"""

from __future__ import annotations

import dataclasses
import sys

import common as c


def as_got(parts: list[list[c.Msg]]) -> dict[int, list[c.Got]]:
    return {p: [c.Got(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp_ms, "create")
                for m in recs] for p, recs in enumerate(parts)}


def fails(mutate, parts) -> bool:
    got = as_got(parts)
    mutate(got)
    chk = c.Checker("selftest")
    c.verify_records(chk, parts, got)
    return not chk.ok


def txn_check_problems() -> list[str]:
    """check_txn_read and check_eos_output must reject what a broken transaction
    implementation would deliver: aborted records, lost or duplicated copies, reordering."""
    problems = []
    (_, committed), (_, everything) = c.txn_expectations(12)
    for name, got, want in [
        ("exact committed keys", committed, committed),
        ("exact uncommitted keys", everything, everything),
    ]:
        chk = c.Checker("selftest")
        c.check_txn_read(chk, name, want, got)
        if not chk.ok:
            problems.append(f"check_txn_read rejected {name}: {chk.failures[:1]}")
    leaked = {p: list(v) for p, v in committed.items()}
    leaked[1].insert(2, b"ab-000001")
    reordered = {p: list(v) for p, v in committed.items()}
    reordered[0][0], reordered[0][1] = reordered[0][1], reordered[0][0]
    for name, got, want in [("aborted record visible", leaked, committed),
                            ("aborted records missing", committed, everything),
                            ("reordered records", reordered, committed)]:
        chk = c.Checker("selftest")
        c.check_txn_read(chk, name, want, got)
        if chk.ok:
            problems.append(f"check_txn_read accepted: {name}")

    records = c.eos_input(120)
    good = {p: [(k, c.eos_transform(v)) for pt, k, v in records if pt == p]
            for p in range(c.PARTITIONS)}
    chk = c.Checker("selftest")
    c.check_eos_output(chk, records, good)
    if not chk.ok:
        problems.append(f"check_eos_output rejected a correct copy: {chk.failures[:1]}")
    def mutated(fn):
        got = {p: list(v) for p, v in good.items()}
        fn(got)
        return got
    bad_cases = {
        "duplicate": lambda g: g[0].insert(40, g[0][3]),
        "lost": lambda g: g[2].pop(5),
        "per-key reorder": lambda g: g[1].__setitem__(
            slice(0, 11), [g[1][10]] + g[1][1:10] + [g[1][0]]),
        "untransformed value": lambda g: g[0].__setitem__(0, (g[0][0][0], b"raw")),
        "foreign key": lambda g: g[0].append((b"other", b"copy|x")),
    }
    for name, fn in bad_cases.items():
        chk = c.Checker("selftest")
        c.check_eos_output(chk, records, mutated(fn))
        if chk.ok:
            problems.append(f"check_eos_output accepted: {name}")
    return problems


def main() -> int:
    parts = c.plan(300, "selftest", "none", 1_000_000)
    problems = []

    chk = c.Checker("selftest")
    c.verify_records(chk, parts, as_got(parts))
    if not chk.ok:
        problems.append(f"identical records flagged: {chk.failures[:2]}")

    def replace(got, p, i, **kw):
        got[p][i] = dataclasses.replace(got[p][i], **kw)

    mutations = {
        "lost record": lambda g: g[1].pop(7),
        "duplicated record": lambda g: g[2].insert(5, g[2][5]),
        "swapped records": lambda g: g[0].__setitem__(slice(3, 5), [g[0][4], g[0][3]]),
        "changed value": lambda g: replace(g, 0, 9, value=b"x"),
        "changed key": lambda g: replace(g, 1, 9, key=b"k1-000000010"),
        "dropped header": lambda g: replace(g, 0, 10, headers=g[0][10].headers[:-1]),
        "empty header became null": lambda g: replace(
            g, 0, 10, headers=g[0][10].headers[:-1] + (("empty", None),)),
        "reordered headers": lambda g: replace(g, 0, 10, headers=g[0][10].headers[::-1]),
        "changed timestamp": lambda g: replace(g, 2, 11, timestamp_ms=g[2][11].timestamp_ms + 1),
        "LogAppendTime": lambda g: replace(g, 2, 12, timestamp_type="append"),
        "offset gap": lambda g: replace(g, 1, 20, offset=21),
    }
    for name, mutate in mutations.items():
        if not fails(mutate, parts):
            problems.append(f"verify_records accepted a {name}")

    recs = parts[0]
    pair_ts = recs[4].timestamp_ms
    if recs[5].timestamp_ms != pair_ts:
        problems.append("plan: records 4 and 5 should share a timestamp")
    if c.first_offset_at_or_after(recs, pair_ts) != 4:
        problems.append("first_offset_at_or_after must return the first of equal timestamps")
    if c.first_offset_at_or_after(recs, pair_ts + 1) != 6:
        problems.append("first_offset_at_or_after must skip to the next larger timestamp")
    if c.first_offset_at_or_after(recs, recs[-1].timestamp_ms + 1) != -1:
        problems.append("first_offset_at_or_after must return -1 past the end")

    good = {k: (v, "DEFAULT_CONFIG") for k, v in c.EXPECTED_DEFAULTS.items()}
    cases = {
        "override reported as default": (dict(good, **{"retention.ms": (
            c.OVERRIDE_RETENTION_MS, "DEFAULT_CONFIG")}), True),
        "override missing": (dict(good, **{"retention.ms": (c.DEFAULT_RETENTION_MS,
                                                             "DEFAULT_CONFIG")}), True),
        "wrong default": (dict(good, **{"cleanup.policy": ("compact", "DEFAULT_CONFIG"),
                                        "retention.ms": (c.DEFAULT_RETENTION_MS,
                                                         "DEFAULT_CONFIG")}), False),
        "default marked as topic config": (dict(good, **{"retention.ms": (
            c.DEFAULT_RETENTION_MS, "DYNAMIC_TOPIC_CONFIG")}), False),
    }
    for name, (configs, override) in cases.items():
        chk = c.Checker("selftest")
        c.check_topic_configs(chk, configs, override)
        if chk.ok:
            problems.append(f"check_topic_configs accepted: {name}")
    chk = c.Checker("selftest")
    c.check_topic_configs(chk, dict(good, **{"retention.ms": (
        c.OVERRIDE_RETENTION_MS, "DYNAMIC_TOPIC_CONFIG")}), True)
    if not chk.ok:
        problems.append(f"check_topic_configs rejected a correct override: {chk.failures}")

    problems += txn_check_problems()

    chk = c.Checker("checks/selftest")
    for p in problems:
        chk.fail(p)
    return 0 if c.report(chk) else 1


if __name__ == "__main__":
    sys.exit(main())
