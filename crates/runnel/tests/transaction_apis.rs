//! The transaction APIs at the protocol level, against the real binary: each request's error
//! codes as Kafka answers them, KIP-890 write verification, the last stable offset in Fetch and
//! ListOffsets, the aborted-transactions list, pending transactional offsets
//! (UNSTABLE_OFFSET_COMMIT), DescribeProducers/DescribeTransactions/ListTransactions, and
//! fencing by epoch.

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use bytes::Bytes;
use common::Broker;
use kafka::Client;
use runnel_protocol::generated::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use runnel_protocol::generated::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use runnel_protocol::generated::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use runnel_protocol::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use runnel_protocol::generated::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use runnel_protocol::generated::{
    add_offsets_to_txn_request, add_offsets_to_txn_response, add_partitions_to_txn_response,
    describe_producers_request, describe_producers_response, describe_transactions_request,
    describe_transactions_response, end_txn_request, end_txn_response, find_coordinator_request,
    find_coordinator_response, init_producer_id_request, init_producer_id_response, list_transactions_request,
    list_transactions_response, offset_fetch_response, txn_offset_commit_response,
};
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};

const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_RECORD: i16 = 87;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const PRODUCER_FENCED: i16 = 90;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

// The data-path APIs are declared in `common/kafka.rs`; the ones only this file sends, here.
kafka::api! {
    FindCoordinator: find_coordinator_request::FindCoordinatorRequest => find_coordinator_response::FindCoordinatorResponse;
    InitProducerId: init_producer_id_request::InitProducerIdRequest => init_producer_id_response::InitProducerIdResponse;
    AddPartitionsToTxn: AddPartitionsToTxnRequest => add_partitions_to_txn_response::AddPartitionsToTxnResponse;
    AddOffsetsToTxn: add_offsets_to_txn_request::AddOffsetsToTxnRequest
        => add_offsets_to_txn_response::AddOffsetsToTxnResponse;
    EndTxn: end_txn_request::EndTxnRequest => end_txn_response::EndTxnResponse;
    TxnOffsetCommit: TxnOffsetCommitRequest => txn_offset_commit_response::TxnOffsetCommitResponse;
    OffsetFetch: OffsetFetchRequest => offset_fetch_response::OffsetFetchResponse;
    DescribeProducers: describe_producers_request::DescribeProducersRequest
        => describe_producers_response::DescribeProducersResponse;
    DescribeTransactions: describe_transactions_request::DescribeTransactionsRequest
        => describe_transactions_response::DescribeTransactionsResponse;
    ListTransactions: list_transactions_request::ListTransactionsRequest
        => list_transactions_response::ListTransactionsResponse;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn create_topic(c: &mut Client, name: &str, partitions: i32) {
    let r = c.send(
        5,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        },
    );
    assert_eq!(r.topics[0].error_code, 0, "create {name}");
}

/// A batch of `count` records from a producer; transactional when `transactional`.
fn batch(producer_id: i64, epoch: i16, first_seq: i32, count: usize, transactional: bool) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i as i32,
            key: None,
            value: Some(Bytes::from(format!("v{}", i64::from(first_seq) + i as i64))),
            headers: vec![],
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp: now_ms(),
        producer_id,
        producer_epoch: epoch,
        base_sequence: first_seq,
        is_transactional: transactional,
        ..Default::default()
    };
    encode_batch(&params, &records, Compression::None).expect("encode batch")
}

/// `(error code, base offset)` of a Produce to one partition.
fn produce(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let r = c.send(
        9,
        ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn init(c: &mut Client, transactional_id: &str) -> (i64, i16) {
    let r = c.send(
        4,
        init_producer_id_request::InitProducerIdRequest {
            transactional_id: Some(transactional_id.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, 0, "InitProducerId");
    (r.producer_id, r.producer_epoch)
}

/// Per-partition codes of a v3 AddPartitionsToTxn.
fn add_partitions(c: &mut Client, id: &str, (pid, epoch): (i64, i16), topic: &str, partitions: &[i32]) -> Vec<i16> {
    let r = c.send(
        3,
        AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: id.into(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: topic.into(),
                partitions: partitions.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

fn end_txn(c: &mut Client, version: i16, id: &str, (pid, epoch): (i64, i16), commit: bool) -> i16 {
    c.send(
        version,
        end_txn_request::EndTxnRequest {
            transactional_id: id.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        },
    )
    .error_code
}

/// `(records bytes, high watermark, last stable offset, aborted (producer id, first offset))`.
type Fetched = (usize, i64, i64, Option<Vec<(i64, i64)>>);

fn fetch(c: &mut Client, topic: &str, isolation_level: i8) -> Fetched {
    let r = c.send(
        11,
        FetchRequest {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation_level,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let aborted = p
        .aborted_transactions
        .as_ref()
        .map(|a| a.iter().map(|t| (t.producer_id, t.first_offset)).collect());
    (
        p.records.as_ref().map_or(0, Bytes::len),
        p.high_watermark,
        p.last_stable_offset,
        aborted,
    )
}

fn latest_offset(c: &mut Client, topic: &str, isolation_level: i8) -> i64 {
    let r = c.send(
        5,
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: -1,
                    timestamp: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    r.topics[0].partitions[0].offset
}

#[test]
fn a_transaction_through_every_api() {
    let broker = Broker::start();
    let mut c = Client::connect(&broker.bootstrap());
    create_topic(&mut c, "t", 2);
    let found = c.send(
        3,
        find_coordinator_request::FindCoordinatorRequest {
            key: "raw".into(),
            key_type: 1,
            ..Default::default()
        },
    );
    assert_eq!((found.error_code, found.port), (0, i32::from(broker.port)));
    let ids = init(&mut c, "raw");
    let (pid, epoch) = ids;

    // KIP-890: a transactional write to a partition not yet in the transaction is refused.
    assert_eq!(
        produce(&mut c, "t", 0, batch(pid, epoch, 0, 3, true)).0,
        INVALID_TXN_STATE
    );
    // Unknown partitions fail the whole request; the others are not attempted.
    assert_eq!(
        add_partitions(&mut c, "raw", ids, "t", &[0, 7]),
        vec![OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        add_partitions(&mut c, "raw", (pid + 1000, epoch), "t", &[0]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(add_partitions(&mut c, "raw", ids, "t", &[0]), vec![0]);
    assert_eq!(produce(&mut c, "t", 0, batch(pid, epoch, 0, 3, true)), (0, 0));
    // A plain producer writes after the open transaction.
    assert_eq!(produce(&mut c, "t", 0, batch(-1, -1, -1, 2, false)).0, 0);

    // The open transaction holds the last stable offset at its first offset.
    assert_eq!(latest_offset(&mut c, "t", 0), 5);
    assert_eq!(latest_offset(&mut c, "t", 1), 0);
    let (bytes, hw, lso, aborted) = fetch(&mut c, "t", 1);
    assert_eq!((bytes, hw, lso, aborted), (0, 5, 0, Some(vec![])));
    let (bytes, _, _, aborted) = fetch(&mut c, "t", 0);
    assert!(bytes > 0);
    assert_eq!(aborted, None, "read_uncommitted gets no aborted list");

    let producers = c.send(
        0,
        describe_producers_request::DescribeProducersRequest {
            topics: vec![describe_producers_request::TopicRequest {
                name: "t".into(),
                partition_indexes: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let state = &producers.topics[0].partitions[0].active_producers[0];
    assert_eq!((state.producer_id, state.current_txn_start_offset), (pid, 0));

    let described = c.send(
        0,
        describe_transactions_request::DescribeTransactionsRequest {
            transactional_ids: vec!["raw".into(), "nope".into()],
            ..Default::default()
        },
    );
    let s = &described.transaction_states[0];
    assert_eq!(
        (s.error_code, s.transaction_state.as_str(), s.producer_id),
        (0, "Ongoing", pid)
    );
    assert_eq!(s.topics[0].partitions, vec![0]);
    assert_eq!(described.transaction_states[1].error_code, TRANSACTIONAL_ID_NOT_FOUND);
    let listed = c.send(
        1,
        list_transactions_request::ListTransactionsRequest {
            state_filters: vec!["Ongoing".into(), "Bogus".into()],
            duration_filter: -1,
            ..Default::default()
        },
    );
    assert_eq!(listed.unknown_state_filters, vec!["Bogus".to_string()]);
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].transactional_id, "raw");

    // The verify-only form (v4+): partition 0 is in the transaction, partition 1 is not.
    let verified = c.send(
        4,
        AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: "raw".into(),
                producer_id: pid,
                producer_epoch: epoch,
                verify_only: true,
                topics: vec![AddPartitionsToTxnTopic {
                    name: "t".into(),
                    partitions: vec![0, 1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let codes: Vec<i16> = verified.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(codes, vec![0, INVALID_TXN_STATE]);

    // Abort: the marker lands at offset 5; read_committed gets the aborted list and the LSO moves.
    assert_eq!(end_txn(&mut c, 3, "raw", ids, false), 0);
    let (bytes, hw, lso, aborted) = fetch(&mut c, "t", 1);
    assert!(bytes > 0);
    assert_eq!((hw, lso, aborted), (6, 6, Some(vec![(pid, 0)])));
    assert_eq!(latest_offset(&mut c, "t", 1), 6);
    // A retried abort succeeds; a commit of the aborted transaction does not.
    assert_eq!(end_txn(&mut c, 3, "raw", ids, false), 0);
    assert_eq!(end_txn(&mut c, 3, "raw", ids, true), INVALID_TXN_STATE);

    // A committed transaction adds nothing to the aborted list.
    assert_eq!(add_partitions(&mut c, "raw", ids, "t", &[0]), vec![0]);
    assert_eq!(produce(&mut c, "t", 0, batch(pid, epoch, 3, 2, true)), (0, 6));
    assert_eq!(end_txn(&mut c, 3, "raw", ids, true), 0);
    let (_, hw, lso, aborted) = fetch(&mut c, "t", 1);
    assert_eq!((hw, lso, aborted), (9, 9, Some(vec![(pid, 0)])));

    // A new InitProducerId bumps the epoch and fences the old one everywhere.
    let (pid2, epoch2) = init(&mut c, "raw");
    assert_eq!((pid2, epoch2), (pid, epoch + 1));
    assert_eq!(end_txn(&mut c, 3, "raw", ids, true), PRODUCER_FENCED);
    assert_eq!(
        end_txn(&mut c, 1, "raw", ids, true),
        INVALID_PRODUCER_EPOCH,
        "pre-KIP-588 code"
    );
    assert_eq!(add_partitions(&mut c, "raw", ids, "t", &[0]), vec![PRODUCER_FENCED]);
    assert_eq!(add_partitions(&mut c, "raw", (pid2, epoch2), "t", &[0]), vec![0]);
    assert_eq!(
        produce(&mut c, "t", 0, batch(pid, epoch, 5, 1, true)).0,
        INVALID_PRODUCER_EPOCH
    );
}

#[test]
fn internal_topics_and_control_batches_are_refused() {
    let broker = Broker::start();
    let mut c = Client::connect(&broker.bootstrap());
    init(&mut c, "creates-the-state-topic");
    let (code, _) = produce(&mut c, "__transaction_state", 0, batch(-1, -1, -1, 1, false));
    assert_eq!(code, INVALID_TOPIC_EXCEPTION);
    // Only the coordinator writes markers: a client's control batch is an invalid record.
    create_topic(&mut c, "t", 1);
    let params = BatchBuilderParams {
        base_timestamp: now_ms(),
        producer_id: 1,
        producer_epoch: 0,
        base_sequence: -1,
        is_transactional: true,
        is_control: true,
        ..Default::default()
    };
    let marker = Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        headers: vec![],
    };
    let control = encode_batch(&params, &[marker], Compression::None).expect("encode");
    assert_eq!(produce(&mut c, "t", 0, control).0, INVALID_RECORD);
    assert_eq!(latest_offset(&mut c, "t", 0), 0, "nothing written");
}

#[test]
fn transactional_offsets_stay_pending_until_the_marker() {
    let broker = Broker::start();
    let mut c = Client::connect(&broker.bootstrap());
    create_topic(&mut c, "in", 1);
    let ids = init(&mut c, "offsets");
    let commit = |c: &mut Client, offset: i64| -> i16 {
        let r = c.send(
            3,
            TxnOffsetCommitRequest {
                transactional_id: "offsets".into(),
                group_id: "g".into(),
                producer_id: ids.0,
                producer_epoch: ids.1,
                generation_id: -1,
                member_id: String::new(),
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: "in".into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        r.topics[0].partitions[0].error_code
    };
    let fetch_committed = |c: &mut Client, require_stable: bool| -> (i16, i64) {
        let r = c.send(
            7,
            OffsetFetchRequest {
                group_id: "g".into(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "in".into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                require_stable,
                ..Default::default()
            },
        );
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    let add_offsets = |c: &mut Client| -> i16 {
        c.send(
            2,
            add_offsets_to_txn_request::AddOffsetsToTxnRequest {
                transactional_id: "offsets".into(),
                producer_id: ids.0,
                producer_epoch: ids.1,
                group_id: "g".into(),
                ..Default::default()
            },
        )
        .error_code
    };
    // The group's offsets partition must be in the transaction first.
    let found = c.send(
        3,
        find_coordinator_request::FindCoordinatorRequest {
            key: "g".into(),
            key_type: 0,
            ..Default::default()
        },
    );
    assert_eq!(found.error_code, 0);
    assert_eq!(commit(&mut c, 10), INVALID_TXN_STATE);
    assert_eq!(add_offsets(&mut c), 0);
    assert_eq!(commit(&mut c, 10), 0);
    // Pending: invisible, and UNSTABLE_OFFSET_COMMIT for a reader that requires stable offsets.
    assert_eq!(fetch_committed(&mut c, false), (0, -1));
    assert_eq!(fetch_committed(&mut c, true), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(end_txn(&mut c, 3, "offsets", ids, true), 0);
    assert_eq!(fetch_committed(&mut c, true), (0, 10));
    // An aborted transaction's offsets never show.
    assert_eq!(add_offsets(&mut c), 0);
    assert_eq!(commit(&mut c, 20), 0);
    assert_eq!(end_txn(&mut c, 3, "offsets", ids, false), 0);
    assert_eq!(fetch_committed(&mut c, true), (0, 10));
    // A fenced producer cannot commit offsets.
    let _ = init(&mut c, "offsets");
    assert_eq!(commit(&mut c, 30), PRODUCER_FENCED);
}

#[test]
fn pending_offsets_and_open_transactions_survive_a_restart() {
    let mut broker = Broker::start();
    let mut c = Client::connect(&broker.bootstrap());
    create_topic(&mut c, "t", 1);
    let ids = init(&mut c, "restart");
    assert_eq!(add_partitions(&mut c, "restart", ids, "t", &[0]), vec![0]);
    assert_eq!(produce(&mut c, "t", 0, batch(ids.0, ids.1, 0, 4, true)), (0, 0));
    drop(c);
    broker.kill_and_restart();
    let mut c = Client::connect(&broker.bootstrap());
    // Still open after the crash: the LSO is held, and the producer can finish its transaction.
    let (_, hw, lso, _) = fetch(&mut c, "t", 1);
    assert_eq!((hw, lso), (4, 0));
    assert_eq!(end_txn(&mut c, 3, "restart", ids, true), 0);
    let (_, hw, lso, aborted) = fetch(&mut c, "t", 1);
    assert_eq!((hw, lso, aborted), (5, 5, Some(vec![])));
}
