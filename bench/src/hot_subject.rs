//! The hot-subject scenario of `registry-bench`: `clients` HTTP/1.1 keep-alive clients (one
//! connection each, as wrk's), each registering a new schema into one subject in a closed loop
//! for a while; then a check, in Postgres itself, that every acknowledged registration is
//! committed exactly once: the subject's versions run 1..=n without a gap, no schema id or
//! version is given twice, every acknowledged id is the schema it was acknowledged for, and
//! nothing is committed that was not acknowledged (unless requests failed). Any failure of that
//! check is an error naming what is wrong.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use hdrhistogram::Histogram;
use sqlx::PgPool;

/// What to drive, and where.
#[derive(Debug, Clone)]
pub struct HotSubject {
    /// The HTTP API's base URL (`http://` or `https://host:port`).
    pub base_url: String,
    /// The `Authorization` value to send, if any.
    pub authorization: Option<String>,
    /// A CA certificate (PEM) to trust, for `https://`.
    pub ca_pem: Option<Vec<u8>>,
    pub subject: String,
    /// NONE, BACKWARD, ...: set on the subject before the load.
    pub compatibility: String,
    pub clients: usize,
    pub run_for: Duration,
}

/// What the load measured and the check found.
#[derive(Debug)]
pub struct HotOutcome {
    pub acknowledged: u64,
    pub errors: u64,
    /// The first error answers (status and body), a few.
    pub first_errors: Vec<String>,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
    /// Version rows of the subject in Postgres after the load.
    pub committed: u64,
}

impl HotOutcome {
    pub fn rate(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64()
    }

    pub fn millis(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Schema `n` of the hot subject: a field of its own (optional), so every one is new and each
/// is BACKWARD (and FORWARD) compatible with every other.
pub fn hot_schema(n: usize) -> String {
    format!(
        r#"{{"type":"record","name":"Hot","namespace":"bench","fields":[{{"name":"id","type":"long"}},{{"name":"h{n}","type":["null","string"],"default":null}}]}}"#
    )
}

fn client(hot: &HotSubject) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60));
    if let Some(pem) = &hot.ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
    }
    Ok(builder.build()?)
}

fn post(
    client: &reqwest::Client,
    hot: &HotSubject,
    path: &str,
    body: String,
    put: bool,
) -> reqwest::RequestBuilder {
    let url = format!("{}{path}", hot.base_url);
    let request = if put {
        client.put(url)
    } else {
        client.post(url)
    };
    let request = request
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(body);
    match &hot.authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

/// Runs the load, then checks what Postgres holds (`pool`: the registry's database).
pub async fn run(hot: &HotSubject, pool: &PgPool) -> anyhow::Result<HotOutcome> {
    let setup = client(hot)?;
    let response = post(
        &setup,
        hot,
        &format!("/config/{}", hot.subject),
        serde_json::json!({ "compatibility": hot.compatibility }).to_string(),
        true,
    )
    .send()
    .await?;
    ensure!(
        response.status().is_success(),
        "cannot set the compatibility of {}: {}",
        hot.subject,
        response.text().await.unwrap_or_default()
    );

    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + hot.run_for;
    let mut tasks = Vec::new();
    for _ in 0..hot.clients {
        let client = client(hot)?;
        let hot = hot.clone();
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut acknowledged: Vec<(usize, i64)> = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            let path = format!("/subjects/{}/versions", hot.subject);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::json!({ "schema": hot_schema(n) }).to_string();
                let begun = Instant::now();
                let outcome = post(&client, &hot, &path, body, false).send().await;
                let answer = match outcome {
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        if status.is_success() {
                            serde_json::from_str::<serde_json::Value>(&text)
                                .ok()
                                .and_then(|body| body["id"].as_i64())
                                .ok_or_else(|| format!("{status} without an id: {text}"))
                        } else {
                            Err(format!("{status}: {text}"))
                        }
                    }
                    Err(error) => Err(format!("request failed: {error}")),
                };
                let _ = histogram.record(begun.elapsed().as_micros().max(1) as u64);
                match answer {
                    Ok(id) => acknowledged.push((n, id)),
                    Err(error) => errors.push(error),
                }
            }
            anyhow::Ok((histogram, acknowledged, errors))
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut acknowledged = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (h, a, e) = task.await??;
        histogram.add(h)?;
        acknowledged.extend(a);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    let committed = verify(pool, &hot.subject, &acknowledged, errors.len()).await?;
    Ok(HotOutcome {
        acknowledged: acknowledged.len() as u64,
        errors: errors.len() as u64,
        first_errors: errors.into_iter().take(3).collect(),
        elapsed,
        histogram,
        committed,
    })
}

/// Checks Postgres against the acknowledgements `(n, id)` (schema `n` got id `id`); the number
/// of version rows of the subject.
async fn verify(
    pool: &PgPool,
    subject: &str,
    acknowledged: &[(usize, i64)],
    failed: usize,
) -> anyhow::Result<u64> {
    let rows: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT version, schema_id FROM subject_versions WHERE subject = $1 ORDER BY version",
    )
    .bind(subject)
    .fetch_all(pool)
    .await
    .context("reading the subject's versions back")?;
    let ids: Vec<i32> = acknowledged
        .iter()
        .map(|(_, id)| i32::try_from(*id))
        .collect::<Result<_, _>>()?;
    let texts: HashMap<i64, String> = sqlx::query_as::<_, (i32, String)>(
        "SELECT id, schema_text FROM schemas WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .context("reading the acknowledged schemas back")?
    .into_iter()
    .map(|(id, text)| (i64::from(id), text))
    .collect();
    check(subject, &rows, &texts, acknowledged, failed)?;
    Ok(rows.len() as u64)
}

/// The check of [`verify`] on what it read: `rows` the subject's (version, schema id) rows in
/// version order, `texts` the stored text of the acknowledged ids.
fn check(
    subject: &str,
    rows: &[(i32, i32)],
    texts: &HashMap<i64, String>,
    acknowledged: &[(usize, i64)],
    failed: usize,
) -> anyhow::Result<()> {
    for (expected, (version, _)) in (1..).zip(rows) {
        if *version != expected {
            bail!(
                "versions of {subject} are not contiguous: version {version} where {expected} was expected"
            );
        }
    }
    let mut version_of: HashMap<i64, i32> = HashMap::new();
    for (version, id) in rows {
        if let Some(earlier) = version_of.insert(i64::from(*id), *version) {
            bail!(
                "schema id {id} is committed twice under {subject}: versions {earlier} and {version}"
            );
        }
    }
    let mut seen = HashSet::new();
    for (n, id) in acknowledged {
        if !seen.insert(*id) {
            bail!("schema id {id} was acknowledged for two different schemas");
        }
        if !version_of.contains_key(id) {
            bail!(
                "schema {n} was acknowledged with id {id}, which is not committed under {subject}"
            );
        }
        let text = texts.get(id);
        if !text.is_some_and(|text| text.contains(&format!("\"h{n}\""))) {
            bail!("id {id}, acknowledged for schema {n}, holds another schema: {text:?}");
        }
    }
    let unacknowledged = rows.len().saturating_sub(acknowledged.len());
    if unacknowledged > failed {
        bail!(
            "{unacknowledged} versions of {subject} are committed but were never acknowledged, and only {failed} requests failed"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ids: &[(i64, usize)]) -> HashMap<i64, String> {
        ids.iter().map(|(id, n)| (*id, hot_schema(*n))).collect()
    }

    #[test]
    fn a_consistent_subject_passes() {
        let rows = [(1, 10), (2, 11), (3, 12)];
        let acked = [(0, 10), (1, 11), (2, 12)];
        check("s", &rows, &texts(&[(10, 0), (11, 1), (12, 2)]), &acked, 0).expect("consistent");
    }

    #[test]
    fn every_inconsistency_fails_with_its_reason() {
        let all = texts(&[(10, 0), (11, 1), (12, 2)]);
        let error =
            |rows: &[(i32, i32)], texts: &HashMap<i64, String>, acked: &[(usize, i64)], failed| {
                check("s", rows, texts, acked, failed)
                    .expect_err("must fail")
                    .to_string()
            };
        // A gap in the versions.
        assert!(
            error(&[(1, 10), (3, 11)], &all, &[(0, 10), (1, 11)], 0).contains("not contiguous")
        );
        // One id under two versions.
        assert!(error(&[(1, 10), (2, 10)], &all, &[(0, 10)], 1).contains("committed twice"));
        // One id acknowledged for two schemas.
        assert!(error(&[(1, 10), (2, 11)], &all, &[(0, 10), (1, 10)], 0).contains("two different"));
        // An acknowledged write missing from Postgres.
        assert!(error(&[(1, 10)], &all, &[(0, 10), (1, 11)], 0).contains("not committed"));
        // An acknowledged id holding another schema.
        assert!(
            error(&[(1, 10), (2, 11)], &all, &[(1, 10), (0, 11)], 0).contains("another schema")
        );
        // A committed version nobody was told about, no request having failed.
        assert!(error(&[(1, 10), (2, 11)], &all, &[(0, 10)], 0).contains("never acknowledged"));
        // ... which a failed request explains.
        check("s", &[(1, 10), (2, 11)], &all, &[(0, 10)], 1).expect("explained by a failure");
    }
}
