//! The Grafana dashboard (`deploy/grafana/runnel-dashboard.json`) and the Prometheus alert rules
//! (`deploy/prometheus/alerts.yaml`) may only query metric names the broker exports: a renamed
//! or misspelt metric would otherwise leave an empty panel or an alert that never fires.
//!
//! The test starts the real broker, produces a few records and commits a group offset (so the
//! per-partition and consumer-lag series exist), scrapes `/metrics`, and checks every metric name
//! found in the PromQL expressions against the scraped sample names. Sample names already carry
//! `_total` / `_bucket` / `_sum` / `_count`, so no suffix rewriting is needed.
//!
//! Names are pulled out of PromQL with a small lexer, not a parser: string literals, label
//! matchers `{...}` and range/subquery brackets `[...]` are skipped; an identifier followed by
//! `(` must be a known function or aggregation; `by`/`without`/`on`/`ignoring`/`group_left`/
//! `group_right` skip their label list; other keywords are skipped; every remaining identifier is
//! a metric name.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{wait_for, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// PromQL functions and aggregation operators, plus Grafana's `label_values` and friends.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count",
    "count_over_time",
    "count_values",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "limitk",
    "limit_ratio",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "minute",
    "month",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "topk",
    "vector",
    "year",
    "start",
    "end",
    "label_values",
    "query_result",
    "metrics",
];

/// Keywords followed by a parenthesised label list, which is not a metric reference.
const LABEL_LIST_KEYWORDS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Other keywords and literals that are never metric names.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the bracket closing the one at `open` (nesting-aware), or the end.
fn skip_group(chars: &[char], open: usize, close: char) -> usize {
    let opener = chars[open];
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == opener {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    chars.len()
}

/// Index just past the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    chars.get(i).map(|&c| (i, c))
}

/// Metric names referenced by one PromQL expression; `Err` names an unknown function.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_group(&chars, i, '}'),
            '[' => i = skip_group(&chars, i, ']'),
            // Numbers and durations (1e3, 5m, 0.99) and Grafana variables ($topic).
            '0'..='9' | '.' | '$' => {
                i += 1;
                while i < chars.len() && (is_ident_char(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let ident: String = chars[start..i].iter().collect();
                let next = next_non_space(&chars, i);
                if LABEL_LIST_KEYWORDS.contains(&ident.as_str()) {
                    if let Some((p, '(')) = next {
                        i = skip_group(&chars, p, ')');
                    }
                } else if KEYWORDS.contains(&ident.as_str()) || FUNCTIONS.contains(&ident.as_str()) {
                    // Aggregations may be written `sum by (x) (...)`: handled on the next token.
                } else if let Some((_, '(')) = next {
                    return Err(format!("unknown PromQL function {ident:?} in {expr}"));
                } else {
                    names.insert(ident);
                }
            }
            _ => i += 1,
        }
    }
    Ok(names)
}

/// The JSON string value starting at the `"` at `start` (escapes decoded), and the index after it.
fn json_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let e = *chars.get(i + 1)?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = chars.get(i + 2..i + 6)?.iter().collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        i += 4;
                    }
                    other => out.push(other),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Every string value of the given JSON keys, in order.
fn json_values(json: &str, keys: &[&str]) -> Vec<(String, String)> {
    let chars: Vec<char> = json.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '"' {
            i += 1;
            continue;
        }
        let Some((s, after)) = json_string(&chars, i) else {
            break;
        };
        i = after;
        if !keys.contains(&s.as_str()) {
            continue;
        }
        let Some((colon, ':')) = next_non_space(&chars, i) else {
            continue;
        };
        let Some((q, '"')) = next_non_space(&chars, colon + 1) else {
            continue;
        };
        if let Some((value, after)) = json_string(&chars, q) {
            out.push((s, value));
            i = after;
        }
    }
    out
}

/// The PromQL expressions of the dashboard: panel `expr`s, and template-variable queries
/// (`label_values(metric, label)` → `metric`).
fn dashboard_exprs(json: &str) -> Vec<String> {
    json_values(json, &["expr", "definition"])
        .into_iter()
        .filter_map(|(key, v)| {
            if key == "expr" {
                return Some(v);
            }
            let inner = v.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
            Some(match inner.rsplit_once(',') {
                Some((metric, _label)) => metric.to_string(),
                None => inner.to_string(),
            })
        })
        .collect()
}

/// The `expr:` values of a Prometheus rules file, each kept on one line by convention.
fn alert_exprs(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .map(|v| {
            let v = v.trim();
            assert!(
                !v.is_empty() && !v.starts_with('|') && !v.starts_with('>'),
                "alert expr must stay on one line so this test can read it: {v:?}"
            );
            v.trim_matches(|c| c == '"' || c == '\'').to_string()
        })
        .collect()
}

/// Names used by `exprs` that are not in `exported`, each with the first expression using it.
fn missing_names(exprs: &[String], exported: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    for expr in exprs {
        let names = metric_names(expr).unwrap_or_else(|e| panic!("{e}"));
        for name in names {
            if !exported.contains(&name) && !missing.iter().any(|(n, _)| n == &name) {
                missing.push((name, expr.clone()));
            }
        }
    }
    missing
}

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Sample names (without labels) in a Prometheus text exposition.
fn sample_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Produces to `topic` and commits offset 1 for `group`, so every per-partition and lag series
/// exists.
fn produce_and_commit(bootstrap: &str, topic: &str, group: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for i in 0..5 {
        let key = format!("k{i}");
        producer
            .send(BaseRecord::to(topic).key(&key).payload("value"))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(TIMEOUT).expect("flush");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(1)).expect("tpl");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

#[test]
fn extractor_finds_metric_names_and_skips_the_rest() {
    let expr = r#"sum by (topic, instance) (rate(kafka_a_total{topic=~"$topic",x="sum(b)"}[$__rate_interval] offset 5m)) / on(instance) group_left(y) kafka_b > 0.99 and bool c:recorded"#;
    let names = metric_names(expr).expect("known functions only");
    let expected: BTreeSet<String> = ["kafka_a_total", "kafka_b", "c:recorded"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected);
    assert!(
        metric_names("rat(kafka_a_total[5m])").is_err(),
        "unknown functions are errors"
    );

    let exported: BTreeSet<String> = ["kafka_a_total".to_string()].into();
    let missing = missing_names(&[expr.to_string()], &exported);
    let missing: Vec<&str> = missing.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(missing, ["c:recorded", "kafka_b"]);

    let json =
        r#"{"expr": "sum(x_total{a=\"b\"})", "definition": "label_values(y_metric, topic)", "title": "z_metric"}"#;
    assert_eq!(dashboard_exprs(json), ["sum(x_total{a=\"b\"})", "y_metric"]);
    assert_eq!(alert_exprs("  - alert: A\n    expr: up > 0\n"), ["up > 0"]);
}

#[test]
fn dashboard_and_alerts_use_only_exported_metric_names() {
    let dashboard = dashboard_exprs(&repo_file("deploy/grafana/runnel-dashboard.json"));
    let alerts = alert_exprs(&repo_file("deploy/prometheus/alerts.yaml"));
    assert!(
        dashboard.len() >= 20,
        "only {} dashboard queries found",
        dashboard.len()
    );
    assert!(alerts.len() >= 5, "only {} alert expressions found", alerts.len());

    let broker = Broker::start();
    assert_ne!(broker.http_port, 0, "the broker did not print its http listener");
    produce_and_commit(&broker.bootstrap(), "dashboard-topic", "dashboard-group");

    // Lag and offset series are computed at scrape time from committed offsets; wait for them.
    let exported = wait_for("consumer lag series", TIMEOUT, || {
        let (status, body) = http_get(broker.http_port, "/metrics")?;
        assert_eq!(status, 200, "{body}");
        let names = sample_names(&body);
        names.contains("kafka_consumergroup_lag_sum").then_some(names)
    });

    let mut used = BTreeSet::new();
    for expr in dashboard.iter().chain(&alerts) {
        used.extend(metric_names(expr).unwrap_or_else(|e| panic!("{e}")));
    }
    assert!(
        used.len() >= 15,
        "only {} metric names referenced: {used:?}",
        used.len()
    );

    let missing_dashboard = missing_names(&dashboard, &exported);
    assert!(
        missing_dashboard.is_empty(),
        "dashboard queries use names the broker does not export: {missing_dashboard:#?}\nexported: {exported:?}"
    );
    let missing_alerts = missing_names(&alerts, &exported);
    assert!(
        missing_alerts.is_empty(),
        "alert rules use names the broker does not export: {missing_alerts:#?}\nexported: {exported:?}"
    );
}
