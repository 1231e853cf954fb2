//! `loadgen`: measures a Kafka-compatible broker the way `rdkafka_performance` users do.
//!
//! - `loadgen start --bin target/release/runnel`: cold start of a fresh broker to its first
//!   acknowledged produce (ms), then its idle RSS (MiB).
//! - `loadgen produce --bootstrap HOST:PORT --topic T --records N --size B [--acks 1]
//!   [--compression none] [--linger-ms 5] [--batch-bytes 16384]`: records/s and MB/s.
//! - `loadgen consume --bootstrap HOST:PORT --topic T --records N`: records/s and MB/s reading
//!   from the start with assigned partitions.
//!
//! Prints a human line and a JSON line for each run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cold start to first acknowledged produce, and idle RSS.
    Start {
        #[arg(long)]
        bin: String,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Produce throughput.
    Produce(ProduceArgs),
    /// Consume throughput (from the beginning).
    Consume {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        records: usize,
    },
}

#[derive(clap::Args)]
struct ProduceArgs {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    #[arg(long, default_value_t = 100)]
    size: usize,
    #[arg(long, default_value = "1")]
    acks: String,
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 16384)]
    batch_bytes: usize,
}

fn main() {
    match Cli::parse().command {
        Cmd::Start { bin, runs } => start(&bin, runs),
        Cmd::Produce(a) => produce(&a),
        Cmd::Consume {
            bootstrap,
            topic,
            records,
        } => consume(&bootstrap, &topic, records),
    }
}

fn report(what: &str, records: usize, bytes: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let rps = records as f64 / secs;
    let mbps = bytes as f64 / secs / 1e6;
    println!("{what}: {records} records, {bytes} bytes in {secs:.3} s = {rps:.0} records/s, {mbps:.1} MB/s");
    println!(
        "{}",
        serde_json::json!({"run": what, "records": records, "bytes": bytes, "seconds": secs, "records_per_s": rps, "mb_per_s": mbps})
    );
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn start(bin: &str, runs: usize) {
    let mut starts = Vec::new();
    for run in 0..runs {
        let dir = std::env::temp_dir().join(format!("runnel-start-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let begin = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--override", "listeners=PLAINTEXT://127.0.0.1:0"])
            .args(["--override", "runnel.http.listener=127.0.0.1:0", "--override"])
            .arg(format!("log.dirs={}", dir.display()))
            .env("RUNNEL_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn broker");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("listener line");
        let addr = line.trim().rsplit(' ').next().expect("address").to_string();
        let listening = begin.elapsed();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &addr)
            .set("acks", "all")
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        let record = FutureRecord::to("cold-start").key("k").payload("first");
        let ack = futures_lite_block_on(producer.send(record, Duration::from_secs(10)));
        let acked = begin.elapsed();
        assert!(ack.is_ok(), "first produce failed: {ack:?}");
        std::thread::sleep(Duration::from_secs(2));
        let rss = rss_mib(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "start run {run}: listening after {:.1} ms, first acked produce after {:.1} ms, idle RSS {rss:.1} MiB",
            listening.as_secs_f64() * 1e3,
            acked.as_secs_f64() * 1e3
        );
        println!(
            "{}",
            serde_json::json!({"run": "start", "listening_ms": listening.as_secs_f64() * 1e3, "first_ack_ms": acked.as_secs_f64() * 1e3, "idle_rss_mib": rss})
        );
        starts.push(acked.as_secs_f64() * 1e3);
    }
    starts.sort_by(f64::total_cmp);
    println!(
        "median cold start to first acked produce: {:.1} ms",
        starts[starts.len() / 2]
    );
}

/// A tiny executor for the one future we await (the producer's delivery future).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

fn produce(a: &ProduceArgs) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("acks", &a.acks)
        .set("compression.codec", &a.compression)
        .set("linger.ms", a.linger_ms.to_string())
        .set("batch.size", a.batch_bytes.to_string())
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("producer");
    let payload = vec![b'x'; a.size];
    let begin = Instant::now();
    for i in 0..a.records {
        let key = (i as u32).to_be_bytes();
        let mut record = BaseRecord::to(&a.topic).key(&key[..]).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    // Drain deliveries by polling (every acknowledgement is counted in the elapsed time).
    let deadline = Instant::now() + Duration::from_secs(300);
    while producer.in_flight_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} messages still in flight",
            producer.in_flight_count()
        );
        producer.poll(Duration::from_millis(10));
    }
    report("produce", a.records, a.records * a.size, begin.elapsed());
}

fn consume(bootstrap: &str, topic: &str, records: usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "loadgen")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("queued.max.messages.kbytes", "1048576")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let begin = Instant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    while n < records {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
            bytes += m.payload().map_or(0, <[u8]>::len);
        }
    }
    report("consume", n, bytes, begin.elapsed());
}
