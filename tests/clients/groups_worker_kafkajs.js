// One kafkajs consumer-group member for scenario_groups.py, run as its own OS process.
//
// Owns: consuming one topic in one group with autoCommit off, committing after each processed
// batch, and printing the same stdout line protocol as groups_worker.py (ASSIGNED, MSG, COMMIT,
// COMMITFAIL, CLOSED). A "close" line on stdin makes it disconnect (LeaveGroup) cleanly.
// Never: commits a record it has not printed as processed, or judges the broker.
//
// usage: node groups_worker_kafkajs.js <bootstrap> <topic> <group> <session_ms>
'use strict'
const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, group, sessionMs] = process.argv.slice(2)
const BATCH_PAUSE_MS = 200 // throttle so the group keeps a backlog while members come and go
const out = (line) => process.stdout.write(line + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const kafka = new Kafka({ clientId: 'groups-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: Number(sessionMs), heartbeatInterval: 1000, maxBytes: 16384, maxWaitTimeInMs: 500 })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    out('ASSIGNED ' + parts.join(','))
  })
  let closing = false
  const close = async () => {
    if (closing) return
    closing = true
    await consumer.disconnect()
    out('CLOSED')
    process.exit(0)
  }
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (d) => { if (d.includes('close')) close() })
  process.stdin.on('end', () => close())
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      let last = null
      // At most 100 records per batch (like the Python workers); kafkajs refetches from the
      // last resolved offset, so the rest is delivered again later, not skipped.
      for (const m of batch.messages.slice(0, 100)) {
        if (!isRunning() || isStale()) break
        out(`MSG ${batch.partition} ${m.offset} ${m.value.toString()}`)
        resolveOffset(m.offset)
        last = m.offset
      }
      if (last === null) return
      const next = (BigInt(last) + 1n).toString()
      try {
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }])
        out(`COMMIT ${batch.partition} ${next}`)
      } catch (e) {
        out(`COMMITFAIL ${e.name}: ${e.message}`)
      }
      await heartbeat()
      await sleep(BATCH_PAUSE_MS)
    }
  })
}

main().catch((e) => { console.error(e); process.exit(1) })
