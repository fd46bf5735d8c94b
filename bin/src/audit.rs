//! `authlog audit`: the same events as `GET /audit/events`, read from the database directly,
//! so it works whether or not a server is running.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use authlog_application::access::Caller;
use authlog_application::audit::{AuditEntry, AuditPage, AuditQuery};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::services::Services;

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only events about this user (case does not matter).
    #[arg(long)]
    pub username: Option<String>,
    /// Only events of this type; repeat, or give a comma-separated list.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events recorded at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    pub since: Option<OffsetDateTime>,
    /// Only events recorded before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    pub until: Option<OffsetDateTime>,
    /// Only events after this position.
    #[arg(long)]
    pub after: Option<u64>,
    /// How many events at most: 1 to 1000 (default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, for people.
    Table,
    /// One document, exactly as `GET /audit/events` answers.
    Json,
    /// One event per line, for pipes and log shippers.
    Jsonl,
}

fn rfc3339(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

pub async fn run(services: &Services, args: AuditArgs) -> anyhow::Result<()> {
    let page = services
        .audit
        .query(
            &Caller::Operator,
            AuditQuery {
                username: args.username,
                types: args.types,
                since: args.since,
                until: args.until,
                after: args.after,
                limit: args.limit,
            },
        )
        .await
        .context("cannot query the audit trail")?;
    let stdout = std::io::stdout();
    let format = args.format.unwrap_or(if stdout.is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let mut out = stdout.lock();
    match format {
        Format::Json => writeln!(out, "{}", page_json(&page))?,
        Format::Jsonl => {
            for entry in &page.events {
                writeln!(out, "{}", event_json(entry))?;
            }
        }
        Format::Table => write!(out, "{}", table(&page))?,
    }
    Ok(())
}

/// The page as `GET /audit/events` spells it.
pub fn page_json(page: &AuditPage) -> Value {
    json!({
        "events": page.events.iter().map(event_json).collect::<Vec<_>>(),
        "next_after": page.next_after,
    })
}

fn event_json(entry: &AuditEntry) -> Value {
    // Unknown metadata is left out, as the HTTP API leaves it out.
    let metadata: serde_json::Map<String, Value> = [
        ("client_addr", &entry.metadata.client_addr),
        ("user_agent", &entry.metadata.user_agent),
        ("request_id", &entry.metadata.request_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), Value::from(value.clone()?))))
    .collect();
    json!({
        "position": entry.position,
        "type": entry.event_type,
        "stream": entry.stream,
        "recorded_at": timestamp(entry.recorded_at),
        "data": entry.data,
        "metadata": metadata,
    })
}

pub fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Aligned columns: position, time, type, user, client, and the payload in compact JSON.
fn table(page: &AuditPage) -> String {
    let mut rows = vec![[
        "POSITION",
        "RECORDED_AT",
        "TYPE",
        "USERNAME",
        "CLIENT",
        "DATA",
    ]
    .map(String::from)];
    rows.extend(page.events.iter().map(|e| {
        [
            e.position.to_string(),
            timestamp(e.recorded_at),
            e.event_type.clone(),
            e.subject.clone().unwrap_or_else(|| "-".into()),
            e.metadata.client_addr.clone().unwrap_or_else(|| "-".into()),
            e.data.to_string(),
        ]
    }));
    let mut text = aligned(&rows);
    if let Some(next) = page.next_after {
        text.push_str(&format!("(more: --after {next})\n"));
    }
    text
}

/// `rows` (a header first) in left-aligned columns, two spaces apart.
pub fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}
