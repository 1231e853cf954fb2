//! librdkafka's own produce and batch-consume calls under the rdkafka crate's clients, which
//! still own the clients, their configuration and the delivery reports. All of the bench
//! crate's `unsafe` is here.
//!
//! Owns: a topic handle made once per producer, and the block of records waiting to be handed
//! to librdkafka. The crate's `send` names the topic on every record, so librdkafka looks the
//! topic up under its locks and the crate copies the name into a fresh C string per record;
//! `rdkafka_performance` makes a topic handle once "to avoid per-message lookups", and so does
//! this. A block goes out either a record at a time (`rd_kafka_produce`, exactly as
//! `rdkafka_performance` sends) or in one call (`rd_kafka_produce_batch`, which reads the clock
//! and takes the topic lock once per block instead of per record). The latency consumer drains
//! what librdkafka has queued in one `rd_kafka_consume_batch_queue` call (`ConsumerQueue`), as
//! `rdkafka_performance -B` consumes.
//! Invariant: every record pushed is handed to librdkafka (or reported as an error) by the next
//! `flush`, and all of a block's records carry the payload given to that `flush`.

use std::ffi::{c_void, CString};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::wall_ns;
use crate::produce::{poll_waiting, AckContext};
use crate::Result;

/// librdkafka's `RD_KAFKA_PARTITION_UA`: let its partitioner pick.
pub const UNASSIGNED: i32 = -1;

/// How records are handed to librdkafka (`--produce-call`).
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum ProduceCall {
    /// `rd_kafka_produce`, one call per record, as `rdkafka_performance` does.
    Single,
    /// `rd_kafka_produce_batch`, one call per block of records bound for one partition.
    Batch,
}

/// A producer's handle on one topic.
pub struct Topic {
    ptr: *mut rd::rd_kafka_topic_t,
}

impl Topic {
    pub fn new(producer: &BaseProducer<AckContext>, name: &str) -> Result<Topic> {
        let cname = CString::new(name).map_err(|_| format!("topic name {name:?} has a NUL byte"))?;
        // SAFETY: the client pointer is live while `producer` is, and every `Topic` is dropped
        // before its producer (workers declare the topic after the producer).
        let ptr =
            unsafe { rd::rd_kafka_topic_new(producer.client().native_ptr(), cname.as_ptr(), std::ptr::null_mut()) };
        if ptr.is_null() {
            // SAFETY: reads librdkafka's thread-local last error.
            let err = RDKafkaErrorCode::from(unsafe { rd::rd_kafka_last_error() });
            return Err(format!("topic handle for {name}: {err}"));
        }
        Ok(Topic { ptr })
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        // SAFETY: made by rd_kafka_topic_new and destroyed once.
        unsafe { rd::rd_kafka_topic_destroy(self.ptr) }
    }
}

/// Records waiting to go to one partition: only their delivery opaques, since every record of
/// a block carries the same payload.
pub struct Block {
    call: ProduceCall,
    max: usize,
    partition: i32,
    opaques: Vec<usize>,
    /// Reused for each `rd_kafka_produce_batch` call.
    messages: Vec<rd::rd_kafka_message_t>,
}

impl Block {
    pub fn new(call: ProduceCall, max: usize) -> Block {
        Block {
            call,
            max: max.max(1),
            partition: UNASSIGNED,
            opaques: Vec::with_capacity(max),
            messages: Vec::with_capacity(max),
        }
    }

    /// Whether a record for `partition` must wait for a flush first.
    pub fn needs_flush_for(&self, partition: i32) -> bool {
        !self.opaques.is_empty() && (self.partition != partition || self.opaques.len() >= self.max)
    }

    /// Adds a record for `partition` (call `needs_flush_for` first).
    pub fn push(&mut self, partition: i32, opaque: usize) {
        debug_assert!(!self.needs_flush_for(partition));
        self.partition = partition;
        self.opaques.push(opaque);
    }

    /// Hands every waiting record to librdkafka with `payload` (copied), serving delivery
    /// reports while its queue is full.
    pub fn flush(&mut self, topic: &Topic, payload: &[u8], producer: &BaseProducer<AckContext>) -> Result<()> {
        match self.call {
            ProduceCall::Single => self.flush_single(topic, payload, producer),
            ProduceCall::Batch => self.flush_batch(topic, payload, producer),
        }
    }

    fn flush_single(&mut self, topic: &Topic, payload: &[u8], producer: &BaseProducer<AckContext>) -> Result<()> {
        for &opaque in &self.opaques {
            loop {
                // SAFETY: the topic handle is live; F_COPY copies the payload before the call
                // returns; the opaque is an integer that librdkafka hands back untouched.
                let rc = unsafe {
                    rd::rd_kafka_produce(
                        topic.ptr,
                        self.partition,
                        rd::RD_KAFKA_MSG_F_COPY,
                        payload.as_ptr() as *mut c_void,
                        payload.len(),
                        std::ptr::null(),
                        0,
                        opaque as *mut c_void,
                    )
                };
                if rc == 0 {
                    break;
                }
                // SAFETY: reads librdkafka's thread-local last error.
                match RDKafkaErrorCode::from(unsafe { rd::rd_kafka_last_error() }) {
                    RDKafkaErrorCode::QueueFull => poll_waiting(producer, Duration::from_millis(1)),
                    e => return Err(format!("produce: {e}")),
                }
            }
        }
        self.opaques.clear();
        Ok(())
    }

    fn flush_batch(&mut self, topic: &Topic, payload: &[u8], producer: &BaseProducer<AckContext>) -> Result<()> {
        self.messages.clear();
        self.messages
            .extend(self.opaques.drain(..).map(|opaque| rd::rd_kafka_message_t {
                err: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
                rkt: std::ptr::null_mut(),
                partition: 0,
                payload: payload.as_ptr() as *mut c_void,
                len: payload.len(),
                key: std::ptr::null_mut(),
                key_len: 0,
                offset: 0,
                _private: opaque as *mut c_void,
            }));
        let mut from = 0;
        while from < self.messages.len() {
            let pending = &mut self.messages[from..];
            // SAFETY: the topic handle is live; `pending` is a valid array of its length; F_COPY
            // copies each payload before the call returns.
            let good = unsafe {
                rd::rd_kafka_produce_batch(
                    topic.ptr,
                    self.partition,
                    rd::RD_KAFKA_MSG_F_COPY,
                    pending.as_mut_ptr(),
                    pending.len() as i32,
                )
            };
            if good as usize == pending.len() {
                break;
            }
            // Once librdkafka's queue is full it fails that record and every one after it,
            // so what failed is a tail: resend it once deliveries have made room.
            let first_failed = pending
                .iter()
                .position(|m| m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                .ok_or("produce batch: fewer records taken than given, none failed")?;
            if let Some(m) = pending[first_failed..]
                .iter()
                .find(|m| RDKafkaErrorCode::from(m.err) != RDKafkaErrorCode::QueueFull)
            {
                return Err(format!("produce: {}", RDKafkaErrorCode::from(m.err)));
            }
            from += first_failed;
            poll_waiting(producer, Duration::from_millis(1));
        }
        self.messages.clear();
        Ok(())
    }
}

/// Most messages taken from the consumer's queue in one call.
const DRAIN_MAX: usize = 1024;

/// A consumer's queue, drained without waiting.
pub struct ConsumerQueue {
    ptr: *mut rd::rd_kafka_queue_t,
    taken: Vec<*mut rd::rd_kafka_message_t>,
}

impl ConsumerQueue {
    /// The queue of `consumer`, which must have a `group.id` (librdkafka has no consumer queue
    /// without one). Drop it before the consumer.
    pub fn new(consumer: &BaseConsumer) -> Result<ConsumerQueue> {
        // SAFETY: the client pointer is live while `consumer` is, and the queue handle is
        // destroyed before the consumer (callers declare it after the consumer).
        let ptr = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        if ptr.is_null() {
            return Err("the consumer has no queue of its own (no group.id)".into());
        }
        Ok(ConsumerQueue {
            ptr,
            taken: Vec::with_capacity(DRAIN_MAX),
        })
    }

    /// Hands the payload of every record already queued (up to `DRAIN_MAX`) to `each`, without
    /// waiting, with the wall-clock time (ns) read once they were all taken; returns how many
    /// records there were. Errors and other events queued among them are skipped (missing
    /// records show up as lost).
    ///
    /// The clock is read after the take, not before: a thread descheduled between a clock
    /// read and the take would otherwise time records that arrived meanwhile as received
    /// before they were, some even before they were sent.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8], u64)) -> usize {
        self.taken.clear();
        // SAFETY: the queue handle is live; `taken` has room for DRAIN_MAX pointers, and
        // librdkafka writes at most that many.
        let n = unsafe { rd::rd_kafka_consume_batch_queue(self.ptr, 0, self.taken.as_mut_ptr(), DRAIN_MAX) };
        let taken_ns = wall_ns();
        let n = usize::try_from(n).unwrap_or(0).min(DRAIN_MAX);
        // SAFETY: librdkafka initialised the first `n` entries.
        unsafe { self.taken.set_len(n) };
        let mut records = 0;
        for &m in &self.taken {
            // SAFETY: each message is valid until destroyed below; its payload is `len` bytes
            // (or null with len 0), borrowed only within this iteration.
            unsafe {
                if (*m).err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let payload = if (*m).payload.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts((*m).payload as *const u8, (*m).len)
                    };
                    each(payload, taken_ns);
                    records += 1;
                }
                rd::rd_kafka_message_destroy(m);
            }
        }
        self.taken.clear();
        records
    }
}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: made by rd_kafka_queue_get_consumer and destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_holds_one_partition_up_to_its_size() {
        let mut b = Block::new(ProduceCall::Batch, 2);
        assert!(!b.needs_flush_for(3), "an empty block takes any partition");
        b.push(3, 10);
        assert!(!b.needs_flush_for(3));
        assert!(b.needs_flush_for(4), "another partition waits for a flush");
        b.push(3, 11);
        assert!(b.needs_flush_for(3), "a full block waits for a flush");
        assert_eq!(b.opaques, vec![10, 11]);
    }
}
