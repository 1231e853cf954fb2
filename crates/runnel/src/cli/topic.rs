//! `runnel topic list|create|describe|delete|alter-config`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Subcommand;
use runnel_protocol::generated::{
    create_partitions_request as cp, create_topics_request as ct, delete_topics_request as dt,
    describe_configs_request as dc, incremental_alter_configs_request as iac,
};
use runnel_protocol::ErrorCode;
use serde_json::{json, Value};

use super::client::{error_text, Client, ClusterMetadata, TopicInfo};
use super::offsets::{list_offsets, Tp, EARLIEST, LATEST};
use super::output::{ids, print_json, print_str, Table};
use super::{key_value, CliError, CliResult, Global};

/// DescribeConfigs / IncrementalAlterConfigs resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs source of a per-topic override (`DYNAMIC_TOPIC_CONFIG`).
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// List topics (a table; `--names-only` for one name per line).
    List {
        /// One topic name per line, nothing else (what `kafka-topics.sh --list` prints).
        #[arg(long)]
        names_only: bool,
        /// Leave out internal topics such as `__consumer_offsets`.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Create a topic.
    Create {
        topic: String,
        /// Partition count (broker default when left out).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (broker default when left out).
        #[arg(long = "replication-factor")]
        replication_factor: Option<i16>,
        /// A topic config `key=value` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed without change when the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Partitions (leader, replicas, ISR, offsets) and non-default configs of topics (all when none given).
    Describe {
        topics: Vec<String>,
        /// Leave out internal topics when describing all.
        #[arg(long)]
        exclude_internal: bool,
        /// Only the per-topic config overrides, as `kafka-configs.sh --describe` prints them.
        #[arg(long)]
        configs_only: bool,
    },
    /// Increase a topic's partition count (CreatePartitions).
    Alter {
        topic: String,
        /// The new, larger partition count.
        #[arg(long)]
        partitions: i32,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Succeed when a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Set or delete per-topic config overrides (IncrementalAlterConfigs).
    AlterConfig {
        topic: String,
        /// Set `key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove the override of `key` (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

pub fn run(command: TopicCommand, global: &Global) -> CliResult<ExitCode> {
    let mut client = global.connect()?;
    match command {
        TopicCommand::List {
            names_only,
            exclude_internal,
        } => list(&mut client, global, names_only, exclude_internal),
        TopicCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let configs = configs.iter().map(|c| key_value(c)).collect::<CliResult<Vec<_>>>()?;
            let spec = CreateSpec {
                name: topic,
                partitions,
                replication_factor,
                configs,
            };
            let created = create_topics(&mut client, std::slice::from_ref(&spec), if_not_exists)?;
            report_created(global, &spec.name, created.first().copied().unwrap_or(false));
            Ok(ExitCode::SUCCESS)
        }
        TopicCommand::Describe {
            topics,
            exclude_internal,
            configs_only,
        } => {
            if configs_only {
                return describe_configs_only(&mut client, global, &topics);
            }
            describe(&mut client, global, topics, exclude_internal)
        }
        TopicCommand::Alter { topic, partitions } => {
            create_partitions(&mut client, &[(topic.clone(), partitions)])?;
            if global.json {
                print_json(&json!({"topic": topic, "partitions": partitions}));
            } else {
                print_str(&format!("topic {topic} now has {partitions} partitions\n"));
            }
            Ok(ExitCode::SUCCESS)
        }
        TopicCommand::Delete { topics, if_exists } => delete(&mut client, global, &topics, if_exists),
        TopicCommand::AlterConfig { topic, set, delete } => {
            let set = set.iter().map(|c| key_value(c)).collect::<CliResult<Vec<_>>>()?;
            if set.is_empty() && delete.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --set key=value or --delete key",
                ));
            }
            alter_configs(&mut client, &topic, &set, &delete)?;
            if global.json {
                print_json(
                    &json!({"topic": topic, "set": set.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(), "deleted": delete}),
                );
            } else {
                print_str(&format!("altered configs of topic {topic}\n"));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(client: &mut Client, global: &Global, names_only: bool, exclude_internal: bool) -> CliResult<ExitCode> {
    let md = client.metadata(None)?;
    let topics: Vec<&TopicInfo> = md.topics.iter().filter(|t| !(exclude_internal && t.internal)).collect();
    if global.json {
        let list: Vec<Value> = topics
            .iter()
            .map(|t| {
                json!({"name": t.name, "partitions": t.partitions.len(), "replication_factor": replication_factor(t), "internal": t.internal})
            })
            .collect();
        print_json(&Value::Array(list));
    } else if names_only {
        let names: String = topics.iter().map(|t| format!("{}\n", t.name)).collect();
        print_str(&names);
    } else {
        let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL"]);
        for t in topics {
            table.row(vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                replication_factor(t).to_string(),
                t.internal.to_string(),
            ]);
        }
        table.print();
    }
    Ok(ExitCode::SUCCESS)
}

pub fn replication_factor(t: &TopicInfo) -> usize {
    t.partitions.first().map_or(0, |p| p.replicas.len())
}

/// A topic to create.
#[derive(Clone, Debug)]
pub struct CreateSpec {
    pub name: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: Vec<(String, String)>,
}

/// Creates `specs`; for each, whether it was created (false: it existed and `if_not_exists`).
pub fn create_topics(client: &mut Client, specs: &[CreateSpec], if_not_exists: bool) -> CliResult<Vec<bool>> {
    let timeout_ms = client.timeout().as_millis().min(i32::MAX as u128) as i32;
    let req = ct::CreateTopicsRequest {
        topics: specs
            .iter()
            .map(|s| ct::CreatableTopic {
                name: s.name.clone(),
                num_partitions: s.partitions.unwrap_or(-1),
                replication_factor: s.replication_factor.unwrap_or(-1),
                assignments: Vec::new(),
                configs: s
                    .configs
                    .iter()
                    .map(|(k, v)| ct::CreatableTopicConfig {
                        name: k.clone(),
                        value: Some(v.clone()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        timeout_ms,
        validate_only: false,
        ..Default::default()
    };
    let (_, resp) = client.any().send(req)?;
    let mut created = Vec::new();
    for spec in specs {
        let Some(r) = resp.topics.iter().find(|r| r.name == spec.name) else {
            return Err(CliError::new(format!("no CreateTopics result for {}", spec.name)));
        };
        match r.error_code {
            0 => created.push(true),
            code if code == ErrorCode::TOPIC_ALREADY_EXISTS.code() && if_not_exists => created.push(false),
            code => {
                let e = error_text(code, r.error_message.as_deref());
                return Err(CliError::new(format!("cannot create topic {}: {e}", spec.name)));
            }
        }
    }
    Ok(created)
}

fn report_created(global: &Global, name: &str, created: bool) {
    if global.json {
        print_json(&json!({"topic": name, "created": created}));
    } else if created {
        print_str(&format!("created topic {name}\n"));
    } else {
        print_str(&format!("topic {name} already exists\n"));
    }
}

fn delete(client: &mut Client, global: &Global, topics: &[String], if_exists: bool) -> CliResult<ExitCode> {
    let deleted = delete_topics(client, topics, if_exists)?;
    if global.json {
        print_json(&json!({"deleted": deleted}));
    } else {
        let lines: String = deleted.iter().map(|t| format!("deleted topic {t}\n")).collect();
        print_str(&lines);
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes `topics`; returns those that were deleted (missing ones are skipped with `if_exists`).
pub fn delete_topics(client: &mut Client, topics: &[String], if_exists: bool) -> CliResult<Vec<String>> {
    let timeout_ms = client.timeout().as_millis().min(i32::MAX as u128) as i32;
    let req = dt::DeleteTopicsRequest {
        // v6+ reads `topics`, older versions `topic_names`; the encoder writes the right one.
        topics: topics
            .iter()
            .map(|t| dt::DeleteTopicState {
                name: Some(t.clone()),
                ..Default::default()
            })
            .collect(),
        topic_names: topics.to_vec(),
        timeout_ms,
        ..Default::default()
    };
    let (_, resp) = client.any().send(req)?;
    let mut deleted = Vec::new();
    for r in resp.responses {
        let name = r.name.clone().unwrap_or_else(|| r.topic_id.to_string());
        match r.error_code {
            0 => deleted.push(name),
            code if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code() && if_exists => {}
            code => {
                let e = error_text(code, r.error_message.as_deref());
                return Err(CliError::new(format!("cannot delete topic {name}: {e}")));
            }
        }
    }
    Ok(deleted)
}

/// Sets and deletes per-topic overrides of `topic` in one IncrementalAlterConfigs.
pub fn alter_configs(client: &mut Client, topic: &str, set: &[(String, String)], delete: &[String]) -> CliResult<()> {
    let sets = set.iter().map(|(k, v)| iac::AlterableConfig {
        name: k.clone(),
        config_operation: OP_SET,
        value: Some(v.clone()),
        ..Default::default()
    });
    let deletes = delete.iter().map(|k| iac::AlterableConfig {
        name: k.clone(),
        config_operation: OP_DELETE,
        value: None,
        ..Default::default()
    });
    let req = iac::IncrementalAlterConfigsRequest {
        resources: vec![iac::AlterConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: topic.to_string(),
            configs: sets.chain(deletes).collect(),
            ..Default::default()
        }],
        validate_only: false,
        ..Default::default()
    };
    let (_, resp) = client.any().send(req)?;
    for r in resp.responses {
        if r.error_code != 0 {
            let e = error_text(r.error_code, r.error_message.as_deref());
            return Err(CliError::new(format!("cannot alter configs of topic {topic}: {e}")));
        }
    }
    Ok(())
}

/// Per-topic config overrides (non-default configs) of `topics`, by topic.
pub fn topic_overrides(
    client: &mut Client,
    topics: &[String],
) -> CliResult<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    if topics.is_empty() {
        return Ok(out);
    }
    let req = dc::DescribeConfigsRequest {
        resources: topics
            .iter()
            .map(|t| dc::DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: t.clone(),
                configuration_keys: None,
                ..Default::default()
            })
            .collect(),
        include_synonyms: false,
        include_documentation: false,
        ..Default::default()
    };
    let (version, resp) = client.any().send(req)?;
    for r in resp.results {
        if r.error_code != 0 {
            let e = error_text(r.error_code, r.error_message.as_deref());
            return Err(CliError::new(format!(
                "cannot describe configs of topic {}: {e}",
                r.resource_name
            )));
        }
        let overrides: BTreeMap<String, String> = r
            .configs
            .into_iter()
            // v0 has no source, only `is_default`.
            .filter(|c| {
                if version == 0 {
                    !c.is_default
                } else {
                    c.config_source == SOURCE_DYNAMIC_TOPIC
                }
            })
            .map(|c| (c.name, c.value.unwrap_or_default()))
            .collect();
        out.insert(r.resource_name, overrides);
    }
    Ok(out)
}

fn describe(client: &mut Client, global: &Global, topics: Vec<String>, exclude_internal: bool) -> CliResult<ExitCode> {
    let md = if topics.is_empty() {
        client.metadata(None)?
    } else {
        client.metadata(Some(&topics))?
    };
    for t in &md.topics {
        if t.error_code != 0 {
            return Err(CliError::new(format!(
                "topic {}: {}",
                t.name,
                error_text(t.error_code, None)
            )));
        }
    }
    let shown: Vec<&TopicInfo> = md.topics.iter().filter(|t| !(exclude_internal && t.internal)).collect();
    let names: Vec<String> = shown.iter().map(|t| t.name.clone()).collect();
    let overrides = topic_overrides(client, &names)?;
    let tps: Vec<Tp> = shown
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.leader >= 0)
                .map(|p| (t.name.clone(), p.partition))
        })
        .collect();
    let start = list_offsets(client, &md, &tps, EARLIEST)?;
    let end = list_offsets(client, &md, &tps, LATEST)?;
    let ctx = DescribeCtx {
        md: &md,
        overrides: &overrides,
        start: &start,
        end: &end,
    };
    if global.json {
        print_json(&Value::Array(shown.iter().map(|t| ctx.json(t)).collect()));
    } else {
        let text: String = shown.iter().map(|t| ctx.text(t)).collect::<Vec<_>>().join("\n");
        print_str(&text);
    }
    Ok(ExitCode::SUCCESS)
}

struct DescribeCtx<'a> {
    md: &'a ClusterMetadata,
    overrides: &'a BTreeMap<String, BTreeMap<String, String>>,
    start: &'a BTreeMap<Tp, i64>,
    end: &'a BTreeMap<Tp, i64>,
}

impl DescribeCtx<'_> {
    fn offsets(&self, topic: &str, p: i32) -> (Option<i64>, Option<i64>) {
        let key = (topic.to_string(), p);
        (self.start.get(&key).copied(), self.end.get(&key).copied())
    }

    fn json(&self, t: &TopicInfo) -> Value {
        let partitions: Vec<Value> = t
            .partitions
            .iter()
            .map(|p| {
                let (start, end) = self.offsets(&t.name, p.partition);
                json!({"partition": p.partition, "leader": p.leader, "replicas": p.replicas, "isr": p.isr,
                       "offline_replicas": p.offline, "start_offset": start, "end_offset": end})
            })
            .collect();
        json!({"name": t.name, "topic_id": t.id.to_string(), "internal": t.internal,
               "partition_count": t.partitions.len(), "replication_factor": replication_factor(t),
               "configs": self.overrides.get(&t.name).cloned().unwrap_or_default(), "partitions": partitions,
               "cluster_id": self.md.cluster_id})
    }

    fn text(&self, t: &TopicInfo) -> String {
        let configs = self
            .overrides
            .get(&t.name)
            .map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let mut out = format!(
            "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {configs}\n",
            t.name,
            t.id,
            t.partitions.len(),
            replication_factor(t)
        );
        let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR", "START-OFFSET", "END-OFFSET"]);
        let show = |o: Option<i64>| o.map_or("-".to_string(), |v| v.to_string());
        for p in &t.partitions {
            let (start, end) = self.offsets(&t.name, p.partition);
            table.row(vec![
                p.partition.to_string(),
                p.leader.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                show(start),
                show(end),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

/// Raises the partition count of each `(topic, count)`.
pub fn create_partitions(client: &mut Client, topics: &[(String, i32)]) -> CliResult<()> {
    let timeout_ms = client.timeout().as_millis().min(i32::MAX as u128) as i32;
    let req = cp::CreatePartitionsRequest {
        topics: topics
            .iter()
            .map(|(name, count)| cp::CreatePartitionsTopic {
                name: name.clone(),
                count: *count,
                assignments: None,
                ..Default::default()
            })
            .collect(),
        timeout_ms,
        validate_only: false,
        ..Default::default()
    };
    let (_, resp) = client.any().send(req)?;
    for r in resp.results {
        if r.error_code != 0 {
            let e = error_text(r.error_code, r.error_message.as_deref());
            return Err(CliError::new(format!("cannot add partitions to {}: {e}", r.name)));
        }
    }
    Ok(())
}

fn describe_configs_only(client: &mut Client, global: &Global, topics: &[String]) -> CliResult<ExitCode> {
    let names = if topics.is_empty() {
        client
            .metadata(None)?
            .topics
            .into_iter()
            .filter(|t| !t.internal)
            .map(|t| t.name)
            .collect()
    } else {
        topics.to_vec()
    };
    let overrides = topic_overrides(client, &names)?;
    if global.json {
        print_json(&json!(overrides));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for (topic, configs) in &overrides {
        out.push_str(&format!("Dynamic configs for topic {topic} are:\n"));
        for (k, v) in configs {
            out.push_str(&format!("  {k}={v}\n"));
        }
    }
    print_str(&out);
    Ok(ExitCode::SUCCESS)
}
