//! `runnel apply -f FILE [--dry-run]`: reconciles a running cluster with a topics.yaml, using
//! the broker's own parser and planner (`runnel_broker::topics_file`), so start-up and this
//! command agree on what a file means. Current state comes from Metadata and DescribeConfigs;
//! the plan is printed first, then applied with CreateTopics, CreatePartitions,
//! IncrementalAlterConfigs and (only with `prune: true`) DeleteTopics.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use runnel_broker::topics_file::{self, CurrentTopic, Plan};
use serde_json::{json, Value};

use super::client::Client;
use super::output::{print_json, print_str};
use super::topic::{
    alter_configs, create_partitions, create_topics, delete_topics, replication_factor, topic_overrides, CreateSpec,
};
use super::{CliError, CliResult, Global};

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The topics file (a list of topics, or `{topics: [...], prune: bool}`).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: ApplyArgs, global: &Global) -> CliResult<ExitCode> {
    let file = topics_file::load(&args.file).map_err(|e| CliError::usage(e.to_string()))?;
    let mut client = global.connect()?;
    let current = current_topics(&mut client)?;
    let plan = topics_file::plan_against(&current, &file.topics, file.prune);
    if global.json {
        print_json(&json!({"plan": plan_json(&plan), "dry_run": args.dry_run, "changes": plan.change_count()}));
    } else {
        print_str(&plan.to_string());
    }
    if args.dry_run || plan.is_noop() {
        if args.dry_run && !global.json {
            eprintln!("runnel: dry run; nothing changed");
        }
        return Ok(ExitCode::SUCCESS);
    }
    execute(&mut client, &plan)?;
    if !global.json {
        print_str(&format!("applied {} change(s)\n", plan.change_count()));
    }
    Ok(ExitCode::SUCCESS)
}

fn current_topics(client: &mut Client) -> CliResult<Vec<CurrentTopic>> {
    let md = client.metadata(None)?;
    let names: Vec<String> = md
        .topics
        .iter()
        .filter(|t| !t.internal && t.error_code == 0)
        .map(|t| t.name.clone())
        .collect();
    let mut overrides = topic_overrides(client, &names)?;
    Ok(md
        .topics
        .iter()
        .filter(|t| !t.internal && t.error_code == 0)
        .map(|t| CurrentTopic {
            name: t.name.clone(),
            partitions: t.partitions.len() as i32,
            replication_factor: replication_factor(t) as i16,
            overrides: overrides.remove(&t.name).unwrap_or_default(),
        })
        .collect())
}

/// Applies `plan` in the broker's order: creations, partition increases, config changes,
/// deletions. Stops at the first failure; a rerun plans only what is left.
fn execute(client: &mut Client, plan: &Plan) -> CliResult<()> {
    if !plan.create.is_empty() {
        let specs: Vec<CreateSpec> = plan
            .create
            .iter()
            .map(|t| CreateSpec {
                name: t.name.clone(),
                partitions: t.partitions,
                replication_factor: t.replication_factor,
                configs: t.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            })
            .collect();
        create_topics(client, &specs, false)?;
    }
    if !plan.add_partitions.is_empty() {
        let counts: Vec<(String, i32)> = plan.add_partitions.iter().map(|p| (p.topic.clone(), p.to)).collect();
        create_partitions(client, &counts)?;
    }
    for c in &plan.config_changes {
        alter_configs(client, &c.topic, &c.set, &c.delete)?;
    }
    if !plan.delete.is_empty() {
        delete_topics(client, &plan.delete, false)?;
    }
    Ok(())
}

fn plan_json(plan: &Plan) -> Value {
    json!({
        "create": plan.create.iter().map(|t| json!({"name": t.name, "partitions": t.partitions,
                    "replication_factor": t.replication_factor, "config": t.config})).collect::<Vec<_>>(),
        "add_partitions": plan.add_partitions.iter().map(|p| json!({"topic": p.topic, "from": p.from, "to": p.to})).collect::<Vec<_>>(),
        "config_changes": plan.config_changes.iter().map(|c| json!({"topic": c.topic,
                    "set": c.set.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(), "delete": c.delete})).collect::<Vec<_>>(),
        "delete": plan.delete,
        "notices": plan.reported.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
    })
}
