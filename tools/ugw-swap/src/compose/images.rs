//! `--keep N`: N images of the pinned repository are kept, the current and the previous pin
//! first (always, even with N = 1), then the newest others; the rest are removed unless a
//! container (running or not) uses them.

use super::docker::docker;
use std::collections::HashSet;
use std::time::Instant;
use ugw_shared::{Ctx, Result};

/// One local image of the repository.
struct Local {
    id: String,
    reference: String,
    created: String,
}

/// Keep `protect` (references) and the newest other images of `repository` up to `keep`;
/// remove the rest that no container uses. Returns the references removed.
pub(crate) fn prune(
    ctx: &Ctx,
    repository: &str,
    keep: usize,
    protect: &[&str],
    deadline: Instant,
) -> Result<Vec<String>> {
    let mut locals = list(ctx, repository, deadline)?;
    // Newest first: `docker images` lists by creation, but say so rather than rely on it.
    locals.sort_by(|a, b| b.created.cmp(&a.created));
    let mut kept_ids: HashSet<String> = HashSet::new();
    for reference in protect {
        if let Ok(id) = docker(
            ctx,
            &["image", "inspect", "--format", "{{.Id}}", reference],
            deadline,
        ) {
            kept_ids.insert(id);
        }
    }
    let used = used_ids(ctx, deadline)?;
    for local in &locals {
        if kept_ids.len() >= keep {
            break;
        }
        kept_ids.insert(local.id.clone());
    }
    let mut removed = Vec::new();
    for local in &locals {
        if kept_ids.contains(&local.id) || used.contains(&local.id) {
            continue;
        }
        match docker(ctx, &["rmi", &local.reference], deadline) {
            Ok(_) => removed.push(local.reference.clone()),
            Err(e) => ctx.reporter.warn(&format!(
                "--keep: {} not removed: {}",
                local.reference, e.message
            )),
        }
    }
    Ok(removed)
}

fn list(ctx: &Ctx, repository: &str, deadline: Instant) -> Result<Vec<Local>> {
    let out = docker(
        ctx,
        &[
            "images",
            "--no-trunc",
            "--digests",
            "--format",
            "{{.ID}}\t{{.Tag}}\t{{.Digest}}\t{{.CreatedAt}}",
            repository,
        ],
        deadline,
    )?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (id, tag, digest, created) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            let reference = if digest.starts_with("sha256:") {
                format!("{repository}@{digest}")
            } else if tag != "<none>" {
                format!("{repository}:{tag}")
            } else {
                id.to_string()
            };
            Some(Local {
                id: id.to_string(),
                reference,
                created: created.to_string(),
            })
        })
        .collect())
}

/// The image ids every container here uses, running or not.
fn used_ids(ctx: &Ctx, deadline: Instant) -> Result<HashSet<String>> {
    let ids = docker(ctx, &["ps", "-aq", "--no-trunc"], deadline)?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let mut args = vec!["inspect", "--format", "{{.Image}}"];
    args.extend(ids);
    Ok(docker(ctx, &args, deadline)?
        .lines()
        .map(str::to_string)
        .collect())
}
