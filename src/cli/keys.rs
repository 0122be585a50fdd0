//! `bullpen keys create|list|revoke`: API keys in PostgreSQL, or printed for the config file.

use anyhow::Context;
use clap::Subcommand;

use crate::auth::{Scopes, api_key, key_store};
use crate::db;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it once; only its SHA-256 is kept.
    Create {
        /// A name unique among active keys, e.g. the team or service using it.
        #[arg(long)]
        name: String,
        /// Comma-separated: predict, features:read, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// Sustained rate such as `600/min`; `rate_limit.per_minute` when absent.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<u32>,
        /// Requests allowed at once; `rate_limit.burst` when absent.
        #[arg(long)]
        burst: Option<u32>,
        /// Print an `[[auth.keys]]` entry for the config file instead of storing the key in
        /// PostgreSQL (`auth.key_store = "config"`).
        #[arg(long)]
        print_config: bool,
    },
    /// List the keys in PostgreSQL (hash prefixes only).
    List,
    /// Revoke the active key with this name; refused within `auth.key_cache_ttl_secs`.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

fn parse_rate(text: &str) -> Result<u32, String> {
    let count = text.strip_suffix("/min").unwrap_or(text);
    count
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(|| format!("`{text}` is not a rate such as 600/min"))
}

pub async fn run(command: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            scope,
            rate,
            burst,
            print_config,
        } => {
            let scopes = Scopes::parse_all(&scope)?;
            if burst == Some(0) {
                anyhow::bail!("--burst must be at least 1");
            }
            let key = api_key::generate()?;
            let hash = api_key::hash(&key);
            if print_config {
                println!("# The key (shown once; give it to its user): {key}");
                println!("[[auth.keys]]");
                println!("name = {}", toml_string(&name));
                println!("hash = \"{}\"", api_key::hash_hex(&hash));
                let names: Vec<String> = scopes.names().iter().map(|s| toml_string(s)).collect();
                println!("scopes = [{}]", names.join(", "));
                if let Some(rate) = rate {
                    println!("rate_per_minute = {rate}");
                }
                if let Some(burst) = burst {
                    println!("burst = {burst}");
                }
                return Ok(());
            }
            let pool = migrated_pool(settings).await?;
            let id = key_store::insert(&pool, &name, &hash, scopes, rate, burst)
                .await
                .with_context(|| format!("storing key `{name}` (is the name already in use?)"))?;
            println!("{key}");
            eprintln!("key {id} `{name}` created; it is shown only this once");
            Ok(())
        }
        KeysCommand::List => {
            let pool = migrated_pool(settings).await?;
            println!("id\tname\thash\tscopes\trate/min\tburst\tcreated\trevoked");
            let shown = |value: Option<u32>| value.map_or("default".to_owned(), |v| v.to_string());
            for key in key_store::list(&pool).await? {
                println!(
                    "{}\t{}\t{}…\t{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.name,
                    key.hash_prefix,
                    key.scopes.join(","),
                    shown(key.rate_per_minute),
                    shown(key.burst),
                    key.created_at.format("%Y-%m-%d %H:%M:%S"),
                    key.revoked_at.map_or("-".to_owned(), |at| at
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()),
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { name } => {
            let pool = migrated_pool(settings).await?;
            if key_store::revoke(&pool, &name).await? == 0 {
                anyhow::bail!("no active key is named `{name}`");
            }
            eprintln!(
                "key `{name}` revoked; every replica refuses it within {} s",
                settings.auth.key_cache_ttl_secs
            );
            Ok(())
        }
    }
}

async fn migrated_pool(settings: &Settings) -> anyhow::Result<db::Pool> {
    let pool = db::pool(&settings.database)?;
    db::migrate(&pool).await.context(
        "reaching PostgreSQL at database.url (for keys in the config file, use --print-config)",
    )?;
    Ok(pool)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => format!("\\u{:04X}", u32::from(c)).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_per_minute_and_names_are_quoted_for_toml() {
        assert_eq!(parse_rate("600/min"), Ok(600));
        assert_eq!(parse_rate("42"), Ok(42));
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("10/s").is_err());
        assert_eq!(toml_string(r#"desk "a" \ b"#), r#""desk \"a\" \\ b""#);
        assert_eq!(toml_string("tab\there"), r#""tab\u0009here""#);
    }
}
