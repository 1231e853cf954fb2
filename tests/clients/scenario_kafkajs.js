// kafkajs scenario: admin create/describe, produce per codec (none, gzip natively; snappy via
// the pure-JS kafkajs-snappy plugin), offsets by timestamp, consumption, an idempotent producer,
// and transactions: commit/abort read with both isolation levels (readUncommitted) and a
// consume-transform-produce copy with transaction.sendOffsets.
//
// Owns only what it does through kafkajs. kafkajs has no manual partition assignment: its only
// consumer is a group member, so consumption is reported as a separate `<codec>/consume` result
// and is skipped (with the reason) when the broker lacks the group APIs (GROUP_APIS=0).
// The message plan mirrors common.py (same keys, values, headers, timestamps per partition).
// Never relaxes a check; every failure names the request and what differed.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')

const PARTITIONS = 3
const OVERRIDE_RETENTION_MS = '3600000'
const DEFAULT_RETENTION_MS = '604800000'
const EXPECTED_DEFAULTS = {
  'cleanup.policy': 'delete',
  'max.message.bytes': '1048588',
  'compression.type': 'producer',
  'message.timestamp.type': 'CreateTime',
}
const SOURCE_NAMES = { 1: 'DYNAMIC_TOPIC_CONFIG', 2: 'DYNAMIC_BROKER_CONFIG', 3: 'DYNAMIC_DEFAULT_BROKER_CONFIG', 4: 'STATIC_BROKER_CONFIG', 5: 'DEFAULT_CONFIG' }
const CODECS = [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP], ['snappy', CompressionTypes.Snappy]]
const MAX_DIFFS_SHOWN = 8
const CHUNK = 3000
const PHASE_TIMEOUT_MS = 1000 * Number(process.env.PHASE_TIMEOUT_S || 120)

const BOOTSTRAP = process.env.BOOTSTRAP
if (!BOOTSTRAP) { console.error('BOOTSTRAP=host:port is required'); process.exit(2) }
const RUN_ID = process.env.RUN_ID || Math.random().toString(16).slice(2, 10)
const N = Number(process.env.MESSAGES || 100000)
const GROUP_APIS = (process.env.GROUP_APIS || '1') === '1'
const GROUP_REASON = process.env.GROUP_APIS_REASON || ''

const kafka = new Kafka({ clientId: 'clients-kafkajs', brokers: [BOOTSTRAP], logLevel: logLevel.ERROR, retry: { retries: 5 } })
// For the deliberate re-create only: kafkajs logs the expected TOPIC_ALREADY_EXISTS as an error.
const quietKafka = new Kafka({ clientId: 'clients-kafkajs', brokers: [BOOTSTRAP], logLevel: logLevel.NOTHING, retry: { retries: 5 } })

class Checker {
  constructor (name) { this.name = name; this.failures = [] }
  fail (what) { this.failures.push(what) }
  expect (cond, what) { if (!cond) this.fail(what) }
  expectEq (got, want, what) {
    const g = JSON.stringify(got); const w = JSON.stringify(want)
    if (g !== w) this.fail(`${what}: got ${g}, want ${w}`)
  }
}

function report (chk, startMs, note) {
  for (const f of chk.failures) console.log(`  [${chk.name}] ${f}`)
  const took = ((Date.now() - startMs) / 1000).toFixed(1)
  console.log(`RESULT ${chk.failures.length ? 'FAIL' : 'PASS'} ${chk.name} (${took}s) ${note}`)
  return chk.failures.length === 0
}

// Same plan as common.py: message i -> partition i % 3, offset i / 3, paired timestamps.
function plan (n, client, codec, baseTs) {
  const parts = [...Array(PARTITIONS)].map(() => [])
  for (let i = 0; i < n; i++) {
    const p = i % PARTITIONS
    const seq = Math.floor(i / PARTITIONS)
    const key = `k${p}-${String(seq).padStart(9, '0')}`
    const hex = ((Math.imul(i, 2654435761) >>> 0).toString(16)).padStart(8, '0')
    const value = `${client}|${codec}|${i}|${hex.repeat(1 + (i % 12))}`
    const headers = [['seq', String(i)], ['client', client]]
    if (i % 10 === 0) headers.push(['dup', '1'], ['dup', '2'], ['empty', ''])
    parts[p].push({ partition: p, offset: seq, key, value, headers, ts: baseTs + Math.floor(seq / 2) * 2 })
  }
  return parts
}

function headersObject (pairs) {
  const obj = {}
  for (const [k, v] of pairs) {
    if (k in obj) obj[k] = [].concat(obj[k], v)
    else obj[k] = v
  }
  return obj
}

function headerPairs (obj) {
  const out = []
  for (const [k, v] of Object.entries(obj || {})) {
    for (const x of (Array.isArray(v) ? v : [v])) out.push([k, x === null || x === undefined ? null : x.toString()])
  }
  return out
}

function firstOffsetAtOrAfter (recs, ts) {
  for (const r of recs) if (r.ts >= ts) return r.offset
  return -1
}

function timestampQueries (recs) {
  if (!recs.length) return []
  const mid = recs[Math.floor(recs.length / 2)]
  const first = recs[0].ts; const last = recs[recs.length - 1].ts
  return [first - 100000, mid.ts, mid.ts + 1, last, last + 1]
}

async function createTopic (chk, admin, topic, override) {
  const configEntries = override ? [{ name: 'retention.ms', value: OVERRIDE_RETENTION_MS }] : []
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries }], waitForLeaders: true, timeout: 30000 })
  chk.expectEq(created, true, 'CreateTopics returned created')
  // kafkajs answers false (not an exception) when the broker says TOPIC_ALREADY_EXISTS.
  const quietAdmin = quietKafka.admin()
  await quietAdmin.connect()
  const again = await quietAdmin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], timeout: 30000 })
  await quietAdmin.disconnect()
  chk.expectEq(again, false, 'CreateTopics of existing topic (false = TOPIC_ALREADY_EXISTS)')
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  const parts = md.topics[0].partitions
  chk.expectEq(parts.length, PARTITIONS, 'Metadata partition count')
  chk.expect(parts.every(p => p.leader >= 0), `Metadata leaders ${JSON.stringify(parts)}`)
}

async function produce (chk, topic, compression, parts, idempotent = false) {
  // idempotent: InitProducerId, producer id/epoch/sequence in every batch (kafkajs allows one
  // request in flight per broker for it).
  const producer = kafka.producer(idempotent
    ? { allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 }
    : { allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  const next = [0, 0, 0]
  let bad = 0
  try {
    const all = []
    const longest = Math.max(...parts.map(p => p.length))
    for (let s = 0; s < longest; s++) for (const p of parts) if (s < p.length) all.push(p[s])
    for (let i = 0; i < all.length; i += CHUNK) {
      const chunk = all.slice(i, i + CHUNK)
      const meta = await producer.send({
        topic,
        acks: -1,
        compression,
        messages: chunk.map(m => ({ key: m.key, value: m.value, partition: m.partition, headers: headersObject(m.headers), timestamp: String(m.ts) })),
      })
      const counts = [0, 0, 0]
      for (const m of chunk) counts[m.partition]++
      for (const r of meta) {
        if (r.errorCode !== 0 || Number(r.baseOffset) !== next[r.partition]) {
          bad++
          if (bad <= MAX_DIFFS_SHOWN) chk.fail(`Produce p${r.partition}: errorCode ${r.errorCode} baseOffset ${r.baseOffset}, want ${next[r.partition]}`)
        }
      }
      for (let p = 0; p < PARTITIONS; p++) next[p] += counts[p]
    }
  } finally {
    await producer.disconnect()
  }
}

async function checkOffsets (chk, admin, topic, parts) {
  const offs = await admin.fetchTopicOffsets(topic)
  for (const o of offs) {
    chk.expectEq([Number(o.low), Number(o.high)], [0, parts[o.partition].length], `ListOffsets earliest/latest partition ${o.partition}`)
  }
  for (let p = 0; p < PARTITIONS; p++) {
    for (const ts of timestampQueries(parts[p])) {
      let want = firstOffsetAtOrAfter(parts[p], ts)
      if (want < 0) want = parts[p].length // kafkajs maps -1 to the high watermark
      const res = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
      const got = res.find(r => r.partition === p)
      chk.expectEq(got ? Number(got.offset) : null, want, `ListOffsets by timestamp p${p} ts=${ts}`)
    }
  }
}

async function checkConfigs (chk, admin, topic, override) {
  const res = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false })
  const r = res.resources[0]
  chk.expectEq(r.errorCode, 0, `DescribeConfigs error (${r.errorMessage})`)
  const cfg = {}
  for (const e of r.configEntries) cfg[e.configName] = [e.configValue, SOURCE_NAMES[e.configSource] || `source${e.configSource}`]
  for (const [name, want] of Object.entries(EXPECTED_DEFAULTS)) {
    if (!cfg[name]) { chk.fail(`DescribeConfigs: ${name} missing`); continue }
    chk.expectEq(cfg[name][0], want, `DescribeConfigs ${name} value`)
    chk.expect(cfg[name][1] !== 'DYNAMIC_TOPIC_CONFIG', `DescribeConfigs ${name}: source ${cfg[name][1]} but not set on topic`)
  }
  const ret = cfg['retention.ms']
  if (!ret) { chk.fail('DescribeConfigs: retention.ms missing'); return }
  if (override) chk.expectEq(ret, [OVERRIDE_RETENTION_MS, 'DYNAMIC_TOPIC_CONFIG'], 'DescribeConfigs retention.ms set at creation (value, source)')
  else {
    chk.expectEq(ret[0], DEFAULT_RETENTION_MS, 'DescribeConfigs retention.ms default value')
    chk.expect(ret[1] !== 'DYNAMIC_TOPIC_CONFIG', `DescribeConfigs retention.ms: source ${ret[1]} but not set on topic`)
  }
}

async function consumeGroup (chk, admin, topic, parts, groupId) {
  const want = parts.map(p => p.length)
  const got = [...Array(PARTITIONS)].map(() => [])
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 100, allowAutoTopicCreation: false })
  await consumer.connect()
  let done
  const finished = new Promise(resolve => { done = resolve })
  const total = want.reduce((a, b) => a + b, 0)
  let seen = 0
  consumer.on(consumer.events.CRASH, ev => {
    chk.fail(`consumer crashed: ${ev.payload.error && ev.payload.error.message}`)
    done()
  })
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          got[batch.partition].push({ offset: Number(m.offset), key: m.key ? m.key.toString() : null, value: m.value ? m.value.toString() : null, headers: headerPairs(m.headers), ts: Number(m.timestamp) })
        }
        seen += batch.messages.length
        if (seen >= total) done()
      },
    })
    const timer = new Promise(resolve => setTimeout(() => resolve('timeout'), PHASE_TIMEOUT_MS))
    if (await Promise.race([finished, timer]) === 'timeout') {
      chk.fail(`Fetch (group): timed out; consumed ${JSON.stringify(got.map(g => g.length))}, want ${JSON.stringify(want)}`)
    }
  } finally {
    await consumer.disconnect() // commits the resolved offsets
  }
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] })
  const offsets = [...Array(PARTITIONS)].map((_, p) => {
    const x = committed[0].partitions.find(q => q.partition === p)
    return x ? Number(x.offset) : null
  })
  chk.expectEq(offsets, want, 'OffsetFetch after consume (committed offsets)')
  verifyRecords(chk, parts, got)
}

function verifyRecords (chk, parts, got) {
  for (let p = 0; p < PARTITIONS; p++) {
    chk.expectEq(got[p].length, parts[p].length, `partition ${p} record count`)
    let diffs = 0
    const n = Math.min(got[p].length, parts[p].length)
    for (let i = 0; i < n; i++) {
      const w = parts[p][i]; const g = got[p][i]
      const problems = []
      if (g.offset !== w.offset) problems.push(`offset ${g.offset} != ${w.offset}`)
      if (g.key !== w.key) problems.push(`key ${g.key} != ${w.key}`)
      if (g.value !== w.value) problems.push(`value ${String(g.value).slice(0, 60)} != ${w.value.slice(0, 60)}`)
      if (JSON.stringify(g.headers) !== JSON.stringify(w.headers)) problems.push(`headers ${JSON.stringify(g.headers)} != ${JSON.stringify(w.headers)}`)
      if (g.ts !== w.ts) problems.push(`timestamp ${g.ts} != ${w.ts}`)
      if (problems.length && ++diffs <= MAX_DIFFS_SHOWN) chk.fail(`partition ${p} record #${i}: ${problems.join('; ')}`)
    }
    if (diffs > MAX_DIFFS_SHOWN) chk.fail(`partition ${p}: ${diffs - MAX_DIFFS_SHOWN} more differing records`)
    for (let i = 1; i < got[p].length; i++) {
      if (got[p][i].offset <= got[p][i - 1].offset || got[p][i].key <= got[p][i - 1].key) {
        chk.fail(`partition ${p}: out of order at offset ${got[p][i].offset}`)
        break
      }
    }
  }
}

async function runCodec (codec, compression, n, idempotent = false) {
  const chk = new Checker(`kafkajs/${codec}`)
  const start = Date.now()
  const topic = `clients-kafkajs-${codec}-${RUN_ID}`
  const override = codec !== 'none'
  const parts = plan(n, 'kafkajs', codec, Date.now() - 120000)
  const admin = kafka.admin()
  let ok = true
  try {
    await admin.connect()
    await createTopic(chk, admin, topic, override)
    await produce(chk, topic, compression, parts, idempotent)
    await checkOffsets(chk, admin, topic, parts)
    await checkConfigs(chk, admin, topic, override)
    ok = report(chk, start, `[${n} msgs, topic ${topic}]`)
    const cname = `kafkajs/${codec}/consume`
    if (!GROUP_APIS) {
      console.log(`RESULT SKIP ${cname} -- kafkajs can only consume through a group; ${GROUP_REASON}`)
    } else {
      const cchk = new Checker(cname)
      const cstart = Date.now()
      try {
        await consumeGroup(cchk, admin, topic, parts, `clients-kafkajs-${codec}-${RUN_ID}`)
      } catch (e) {
        cchk.fail(`exception: ${e.name}: ${e.message}`)
      }
      ok = report(cchk, cstart, `[${n} msgs via group]`) && ok
    }
  } catch (e) {
    chk.fail(`exception: ${e.name}: ${e.message}`)
    ok = report(chk, start, `[${n} msgs, topic ${topic}]`)
  } finally {
    await admin.disconnect()
  }
  return ok
}

// --- transactions (issue 4 items 3 and 6) -------------------------------------------------------

const TXN_APIS = { 10: 'FindCoordinator', 22: 'InitProducerId', 24: 'AddPartitionsToTxn', 25: 'AddOffsetsToTxn', 26: 'EndTxn', 28: 'TxnOffsetCommit' }
const BROKER_APIS = (process.env.BROKER_APIS || '').split(',').filter(x => x)
const missingTxnApis = () => BROKER_APIS.length ? Object.entries(TXN_APIS).filter(([k]) => !BROKER_APIS.includes(k)).map(([, v]) => v) : []

// Same phases as common.txn_phases: commit, abort, commit; record i to partition i % 3.
function txnPhases (n) {
  return [['c1', true], ['ab', false], ['c2', true]].map(([phase, commit]) =>
    [phase, commit, [...Array(n)].map((_, i) => [i % PARTITIONS, `${phase}-${String(i).padStart(6, '0')}`])])
}

function txnExpectations (n) {
  const keys = selected => [...Array(PARTITIONS)].map((_, pt) => selected.flatMap(([, , recs]) => recs.filter(([p]) => p === pt).map(([, k]) => k)))
  const phases = txnPhases(n)
  return [['read_committed', keys(phases.filter(x => x[1]))], ['read_uncommitted', keys(phases)]]
}

function checkTxnRead (chk, isolation, want, got) {
  for (let pt = 0; pt < PARTITIONS; pt++) {
    const keys = got[pt].map(r => r.key)
    if (JSON.stringify(keys) !== JSON.stringify(want[pt])) {
      const extra = keys.filter(k => !want[pt].includes(k)).slice(0, 3)
      const lost = want[pt].filter(k => !keys.includes(k)).slice(0, 3)
      chk.fail(`${isolation} partition ${pt}: ${keys.length} records, want ${want[pt].length}; unexpected ${JSON.stringify(extra)}, missing ${JSON.stringify(lost)}`)
    }
  }
}

async function newTopic (chk, variant) {
  const topic = `clients-kafkajs-${variant}-${RUN_ID}`
  const admin = kafka.admin()
  await admin.connect()
  try { await createTopic(chk, admin, topic, false) } finally { await admin.disconnect() }
  return topic
}

// Reads a topic through a fresh group (kafkajs has no manual assignment) until each partition
// holds its wanted count, then one more second, so records that should be invisible show up.
async function readSettled (chk, topic, isolation, want) {
  const got = [...Array(PARTITIONS)].map(() => [])
  const consumer = kafka.consumer({ groupId: `clients-kafkajs-read-${isolation}-${topic}`, readUncommitted: isolation === 'read_uncommitted', sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 100, allowAutoTopicCreation: false })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) got[batch.partition].push({ offset: Number(m.offset), key: m.key ? m.key.toString() : null, value: m.value ? m.value.toString() : null })
      },
    })
    const deadline = Date.now() + PHASE_TIMEOUT_MS
    while (!got.every((g, p) => g.length >= want[p])) {
      if (Date.now() > deadline) { chk.fail(`Fetch (${isolation}): timed out with ${JSON.stringify(got.map(g => g.length))} records, want ${JSON.stringify(want)}`); return got }
      await sleep(100)
    }
    await sleep(1000)
  } finally {
    await consumer.disconnect()
  }
  return got
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function txnProducer (name) {
  return kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, transactionalId: `clients-kafkajs-${name}-${RUN_ID}` })
}

async function runTransactions (n) {
  const name = 'kafkajs/transactions'
  const missing = missingTxnApis()
  if (missing.length) { console.log(`RESULT SKIP ${name} -- broker does not advertise ${missing.join(' ')}`); return true }
  if (!GROUP_APIS) { console.log(`RESULT SKIP ${name} -- kafkajs can only consume through a group; ${GROUP_REASON}`); return true }
  const chk = new Checker(name)
  const start = Date.now()
  let topic = '?'
  try {
    topic = await newTopic(chk, 'txn')
    const producer = txnProducer('txn')
    await producer.connect()
    try {
      for (const [, commit, recs] of txnPhases(n)) {
        const txn = await producer.transaction()
        await txn.send({ topic, acks: -1, messages: recs.map(([partition, key]) => ({ key, value: key, partition })) })
        if (commit) await txn.commit()
        else await txn.abort()
      }
    } finally {
      await producer.disconnect()
    }
    for (const [isolation, want] of txnExpectations(n)) {
      const got = await readSettled(chk, topic, isolation, want.map(w => w.length))
      checkTxnRead(chk, isolation, want, got)
    }
  } catch (e) {
    chk.fail(`exception: ${e.name}: ${e.message}`)
  }
  return report(chk, start, `[3 x ${n} msgs, topic ${topic}]`)
}

// Same input as common.eos_input: 30 keys, key k on partition k % 3, per-key sequence numbers.
function eosInput (n) {
  const seqs = Array(30).fill(0)
  const out = []
  for (let i = 0; i < n; i++) {
    const k = i % 30
    const key = `key-${String(k).padStart(2, '0')}`
    out.push([k % PARTITIONS, key, `${key}|${String(seqs[k]++).padStart(6, '0')}`])
  }
  return out
}

function checkEosOutput (chk, records, got) {
  const want = {}
  for (const [, key, value] of records) (want[key] = want[key] || []).push(`copy|${value}`)
  const have = {}
  for (const recs of got) for (const r of recs) (have[r.key] = have[r.key] || []).push(r.value)
  let bad = 0
  for (const [key, w] of Object.entries(want)) {
    const h = have[key] || []
    if (JSON.stringify(h) !== JSON.stringify(w)) {
      if (++bad <= 3) chk.fail(`read_committed output key ${key}: ${h.length} records, want ${w.length} (${h.length - new Set(h).size} duplicates, ${w.filter(v => !h.includes(v)).length} missing)`)
    }
  }
  chk.expect(bad === 0, `${bad} of ${Object.keys(want).length} keys wrong in the read_committed output`)
  const extra = Object.keys(have).filter(k => !(k in want))
  chk.expect(extra.length === 0, `unexpected keys in the output: ${extra.slice(0, 3)}`)
}

// Consume-transform-produce with transaction.sendOffsets: the first batch past a third of the
// input is aborted and the consumer seeks back to the batch's first offset; read_committed
// output holds every input once in per-key order, read_uncommitted also the aborted batch,
// and the group's committed offsets end at the input's end.
async function runEos (n) {
  const name = 'kafkajs/eos-copy'
  const missing = missingTxnApis()
  if (missing.length) { console.log(`RESULT SKIP ${name} -- broker does not advertise ${missing.join(' ')}`); return true }
  if (!GROUP_APIS) { console.log(`RESULT SKIP ${name} -- kafkajs can only consume through a group; ${GROUP_REASON}`); return true }
  const chk = new Checker(name)
  const start = Date.now()
  const groupId = `clients-kafkajs-eos-${RUN_ID}`
  const records = eosInput(n)
  const want = [...Array(PARTITIONS)].map((_, pt) => records.filter(r => r[0] === pt).length)
  let aborted = 0
  let copied = 0
  try {
    const src = await newTopic(chk, 'eos-in')
    const dst = await newTopic(chk, 'eos-out')
    const plain = kafka.producer({ allowAutoTopicCreation: false })
    await plain.connect()
    // Small sends, so the copier's fetches return several small batches per partition.
    for (let i = 0; i < records.length; i += 30) {
      await plain.send({ topic: src, acks: -1, messages: records.slice(i, i + 30).map(([partition, key, value]) => ({ key, value, partition })) })
    }
    await plain.disconnect()
    const producer = txnProducer('eos')
    await producer.connect()
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 100, maxBytesPerPartition: 2000, allowAutoTopicCreation: false })
    await consumer.connect()
    const errors = []
    consumer.on(consumer.events.CRASH, ev => errors.push(`consumer crashed: ${ev.payload.error && ev.payload.error.message}`))
    try {
      await consumer.subscribe({ topics: [src], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, isStale }) => {
          if (!batch.messages.length || isStale()) return
          const txn = await producer.transaction()
          await txn.send({ topic: dst, acks: -1, messages: batch.messages.map(m => ({ key: m.key, value: Buffer.concat([Buffer.from('copy|'), m.value]), partition: batch.partition })) })
          const next = String(Number(batch.lastOffset()) + 1)
          await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: src, partitions: [{ partition: batch.partition, offset: next }] }] })
          if (!aborted && copied + batch.messages.length > Math.floor(n / 3)) {
            await txn.abort()
            aborted = batch.messages.length
            consumer.seek({ topic: src, partition: batch.partition, offset: batch.firstOffset() })
            return
          }
          await txn.commit()
          copied += batch.messages.length
        },
      })
      const deadline = Date.now() + PHASE_TIMEOUT_MS
      while (copied < n && !errors.length && Date.now() < deadline) await sleep(100)
    } finally {
      await consumer.disconnect()
      await producer.disconnect()
    }
    for (const e of errors) chk.fail(e)
    chk.expectEq(copied, n, 'records copied in committed transactions')
    chk.expect(aborted > 0, 'no batch was aborted')
    const admin = kafka.admin()
    await admin.connect()
    try {
      const committed = await admin.fetchOffsets({ groupId, topics: [src] })
      const offsets = [...Array(PARTITIONS)].map((_, p) => Number((committed[0].partitions.find(q => q.partition === p) || {}).offset))
      chk.expectEq(offsets, want, "group's committed input offsets after the copy")
    } finally {
      await admin.disconnect()
    }
    checkEosOutput(chk, records, await readSettled(chk, dst, 'read_committed', want))
    const dirty = await readSettled(chk, dst, 'read_uncommitted', want)
    chk.expectEq(dirty.reduce((a, g) => a + g.length, 0), n + aborted, 'read_uncommitted output records (copies + aborted)')
  } catch (e) {
    chk.fail(`exception: ${e.name}: ${e.message}`)
  }
  return report(chk, start, `[${n} msgs, one aborted batch of ${aborted}, group ${groupId}]`)
}

async function main () {
  let ok = true
  const only = process.env.KAFKAJS_ONLY // development aid: run only the named steps
  const want = step => !only || only.split(',').includes(step)
  for (const [codec, compression] of CODECS) if (want(codec)) ok = (await runCodec(codec, compression, N)) && ok
  if (want('idempotent')) ok = (await runCodec('idempotent', CompressionTypes.None, Math.min(N, 20000), true)) && ok
  if (want('transactions')) ok = (await runTransactions(Math.min(N, 1000))) && ok
  if (want('eos')) ok = (await runEos(Math.min(N, 900))) && ok
  return ok ? 0 : 1
}

main().then(code => process.exit(code), e => { console.error(e); process.exit(1) })
