//! Output of `loadgen`: one set of named metrics per run, then the median of each over the runs.
//!
//! Owns formatting only. Human mode prints the configuration first, one progress line per run
//! on stderr, and at the end a table with a row per metric and a column per run plus the
//! median. `--json` prints one JSON object per run as it finishes and a last object with
//! `"run": "median"`; every object carries the configuration, so a line stands on its own.
//! Invariant: every run of a report has the same metric names in the same order (they depend
//! only on the configuration), so the median is taken metric by metric.

use hdrhistogram::Histogram;
use serde_json::{Map, Value};

/// Named figures of one run, units last in the names (`records_per_s`, `e2e_p99_us`).
pub type Metrics = Vec<(String, f64)>;

pub struct Report {
    kind: &'static str,
    json: bool,
    config: Vec<(String, String)>,
    runs: Vec<Metrics>,
}

impl Report {
    /// Prints the configuration (human mode) and returns a report to add runs to.
    pub fn new(kind: &'static str, json: bool, config: Vec<(String, String)>) -> Report {
        if !json {
            println!("loadgen {kind}, configuration:");
            for (k, v) in &config {
                println!("  {k} = {v}");
            }
        }
        Report {
            kind,
            json,
            config,
            runs: Vec::new(),
        }
    }

    /// Records one run and prints it (a JSON line, or a progress line on stderr).
    pub fn add(&mut self, metrics: Metrics) {
        let run = self.runs.len() + 1;
        if self.json {
            println!("{}", self.json_line(Value::from(run), None, &metrics));
        } else {
            let summary: Vec<String> = metrics
                .iter()
                .take(6)
                .map(|(k, v)| format!("{k}={}", fmt_value(*v)))
                .collect();
            eprintln!("run {run}: {}", summary.join(" "));
        }
        self.runs.push(metrics);
    }

    /// Prints the median of every metric (the table in human mode, a JSON line otherwise).
    pub fn finish(&self) {
        let Some(first) = self.runs.first() else {
            return;
        };
        let medians: Metrics = first
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let values: Vec<f64> = self.runs.iter().filter_map(|r| r.get(i)).map(|m| m.1).collect();
                (name.clone(), median(&values))
            })
            .collect();
        if self.json {
            let runs = Some(self.runs.len());
            println!("{}", self.json_line(Value::from("median"), runs, &medians));
            return;
        }
        print!("{}", self.table(&medians));
    }

    fn json_line(&self, run: Value, runs: Option<usize>, metrics: &Metrics) -> Value {
        let mut obj = Map::new();
        obj.insert("kind".into(), Value::from(self.kind));
        obj.insert("run".into(), run);
        if let Some(n) = runs {
            obj.insert("runs".into(), Value::from(n));
        }
        for (k, v) in metrics {
            obj.insert(
                k.clone(),
                serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
            );
        }
        let config: Map<String, Value> = self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        obj.insert("config".into(), Value::Object(config));
        Value::Object(obj)
    }

    fn table(&self, medians: &Metrics) -> String {
        let mut header = vec!["metric".to_string()];
        header.extend((1..=self.runs.len()).map(|r| format!("run {r}")));
        header.push("median".into());
        let mut rows = vec![header];
        for (i, (name, med)) in medians.iter().enumerate() {
            let mut row = vec![name.clone()];
            row.extend(
                self.runs
                    .iter()
                    .map(|r| r.get(i).map_or(String::new(), |m| fmt_value(m.1))),
            );
            row.push(fmt_value(*med));
            rows.push(row);
        }
        render(&rows)
    }
}

/// Left-aligned first column, right-aligned numbers.
fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(String::len).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// Three significant figures or more, no exponent: readable for rates, µs and MiB alike.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Median of a non-empty slice (mean of the middle two for an even count); NaN if empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A histogram of nanoseconds as `{prefix}_p50_us`, `_p99_us`, `_p999_us`, `_max_us`, `_count`.
pub fn latency_metrics(prefix: &str, h: &Histogram<u64>) -> Metrics {
    let us = |ns: u64| ns as f64 / 1e3;
    vec![
        (format!("{prefix}_p50_us"), us(h.value_at_quantile(0.50))),
        (format!("{prefix}_p99_us"), us(h.value_at_quantile(0.99))),
        (format!("{prefix}_p999_us"), us(h.value_at_quantile(0.999))),
        (format!("{prefix}_max_us"), us(h.max())),
        (format!("{prefix}_count"), h.len() as f64),
    ]
}

/// The percentage of a nanosecond histogram's values over each of `limits_ms`: a p99 target of
/// L ms is met when at most 1 % are over L, and this shows by how much it is missed.
pub fn share_over(prefix: &str, h: &Histogram<u64>, limits_ms: &[u64]) -> Metrics {
    limits_ms
        .iter()
        .map(|&ms| {
            let limit_ns = h.highest_equivalent(ms * 1_000_000);
            let over = h.len() - h.count_between(0, limit_ns);
            let pct = if h.is_empty() {
                0.0
            } else {
                100.0 * over as f64 / h.len() as f64
            };
            (format!("{prefix}_over_{ms}ms_pct"), pct)
        })
        .collect()
}

/// Nanosecond histogram from 1 ns to 10 minutes with 3 significant digits (about 200 KiB).
pub fn new_ns_histogram() -> Histogram<u64> {
    const MAX_NS: u64 = 600_000_000_000;
    match Histogram::new_with_bounds(1, MAX_NS, 3) {
        Ok(h) => h,
        // The bounds are constants that satisfy the crate's rules (low ≥ 1, high ≥ 2 × low).
        Err(e) => unreachable!("histogram bounds: {e}"),
    }
}

/// Throughput metrics common to every kind of run.
pub fn throughput_metrics(records: u64, bytes: u64, seconds: f64) -> Metrics {
    let per_s = |x: u64| if seconds > 0.0 { x as f64 / seconds } else { 0.0 };
    vec![
        ("records_per_s".into(), per_s(records)),
        ("mb_per_s".into(), per_s(bytes) / 1e6),
        ("records".into(), records as f64),
        ("bytes".into(), bytes as f64),
        ("seconds".into(), seconds),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_over_counts_values_past_each_limit() {
        let mut h = new_ns_histogram();
        for us in [200, 900, 1_000, 1_500, 2_500, 3_000, 400, 300, 100, 50] {
            h.record(us * 1_000).expect("record");
        }
        let m = share_over("e2e", &h, &[1, 2]);
        assert_eq!(
            m,
            vec![
                ("e2e_over_1ms_pct".to_string(), 30.0),
                ("e2e_over_2ms_pct".to_string(), 20.0)
            ]
        );
        assert_eq!(
            share_over("x", &new_ns_histogram(), &[1]),
            vec![("x_over_1ms_pct".to_string(), 0.0)]
        );
    }

    #[test]
    fn median_odd_even_and_unsorted() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn values_format_without_exponents() {
        assert_eq!(fmt_value(2_512_345.678), "2512346");
        assert_eq!(fmt_value(12.3456), "12.35");
        assert_eq!(fmt_value(0.01234), "0.012");
        assert_eq!(fmt_value(5.0), "5");
    }

    #[test]
    fn percentiles_in_microseconds() {
        let mut h = new_ns_histogram();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).expect("in range");
        }
        let m = latency_metrics("e2e", &h);
        let get = |n: &str| m.iter().find(|(k, _)| k == n).map(|x| x.1).expect(n);
        assert!((get("e2e_p50_us") - 500.0).abs() <= 1.0);
        assert!((get("e2e_p99_us") - 990.0).abs() <= 1.0);
        assert!((get("e2e_max_us") - 1000.0).abs() <= 1.0);
        assert_eq!(get("e2e_count"), 1000.0);
    }

    #[test]
    fn table_has_a_row_per_metric_and_a_median_column() {
        let mut r = Report::new("produce", true, vec![]);
        r.runs
            .push(vec![("records_per_s".into(), 10.0), ("mb_per_s".into(), 1.0)]);
        r.runs
            .push(vec![("records_per_s".into(), 30.0), ("mb_per_s".into(), 3.0)]);
        r.runs
            .push(vec![("records_per_s".into(), 20.0), ("mb_per_s".into(), 2.0)]);
        let t = r.table(&vec![("records_per_s".into(), 20.0), ("mb_per_s".into(), 2.0)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with("median") && lines[0].contains("run 3"));
        assert!(lines[1].starts_with("records_per_s") && lines[1].ends_with("20"));
    }
}
