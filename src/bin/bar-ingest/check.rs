//! `check-config [--connect]` and `schema`: what an operator runs before the daemon, to learn
//! whether the config, the credentials, TLS, the schema and the role's permissions are right.

use std::path::Path;
use std::process::ExitCode;

use bar_ingest::config::Settings;
use bar_ingest::store::{self, Access, Schema};

/// Validates the file and prints a one-line summary; with `connect`, also connects and checks
/// the schema (never creating it) and the permissions of `load`/`run`.
pub fn check_config(file: &Path, points: Option<&str>, connect: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(file, points)?;
    let db = &settings.database;
    println!(
        "{}: OK (contact points {}, keyspace {}, inbox {}, time zone {}, source rules {})",
        file.display(),
        db.contact_points.join(","),
        db.keyspace,
        settings.paths.inbox.display(),
        settings.timezone,
        settings.sources.len()
    );
    if connect {
        crate::block_on(try_connection(&settings))??;
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects as the config says, checks the schema and the load permissions, and says so.
async fn try_connection(settings: &Settings) -> anyhow::Result<()> {
    let db = &settings.database;
    let user = db.user();
    let session = store::connect(settings).await?;
    let schema = Schema::from_config(db);
    let mut problems = store::check_schema(&session, &schema).await?;
    if !db.manage_schema {
        problems.retain(|p| schema.blocks_start(p));
    }
    let who = user.map_or("without credentials".into(), |u| format!("as `{u}`"));
    let tls = if db.tls.enabled { "TLS" } else { "no TLS" };
    println!("connected to {} {who} ({tls})", db.contact_points.join(","));
    if !problems.is_empty() {
        let listed: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        let what = if problems.iter().any(|p| !p.is_missing_object()) {
            "start-up refuses a table that differs from what bar-ingest reads and writes: fix or \
             recreate it; `bar-ingest schema` prints the expected CQL"
        } else if db.manage_schema {
            "start-up will create what is missing (database.manage_schema = true), which needs \
             the CREATE permission"
        } else {
            "start-up will refuse to run (database.manage_schema = false); `bar-ingest schema` \
             prints the CQL"
        };
        anyhow::bail!(
            "the schema is not what bar-ingest needs:\n{}\n({what})",
            listed.join("\n")
        );
    }
    let layout = store::check_load_access(&session, &schema, settings.layout, user).await?;
    println!(
        "schema {} and {} as needed; permissions of load and run present (storage layout {})",
        schema.bars(),
        schema.history(),
        layout.name()
    );
    Ok(())
}

/// Prints the DDL, `;`-terminated, then the GRANTs of the roles named.
pub fn print_schema(settings: &Settings, loader: Option<&str>, reader: Option<&str>) {
    let schema = Schema::from_config(&settings.database);
    for statement in schema.statements() {
        println!("{statement};");
    }
    // A loader of the default layout (days, learnt from the keyspace) needs all three.
    let loads = [Access::Load, Access::ReadLayout, Access::WriteDays];
    let mut printed = std::collections::HashSet::new();
    let roles = loads
        .iter()
        .map(|a| (loader, *a))
        .chain([(reader, Access::Fetch)]);
    for (role, access) in roles {
        if let Some(role) = role {
            for grant in store::grants(&schema, access, role) {
                if printed.insert(grant.clone()) {
                    println!("{grant};");
                }
            }
        }
    }
}
