//! What a rollback on a failed run may take back: this run's own switch, nothing more. A run
//! that failed before its swap (the download, the migration), or whose swap failed and switched
//! back by itself, left the release that was running in place; rolling back from it would take
//! the service to an older release than the one it ran before the upgrade.

use ugw_shared::Ctx;
use ugw_shared::record::Status;
use ugw_shared::results::Swapped;

/// Why there is nothing for a rollback to do on this record, or `None` when it should act:
/// the run is not a failed one (a rollback by hand goes to the release before), or its last
/// swap of this place (`ours`) switched to the release now to be left.
pub(crate) fn nothing_to_take_back(
    ctx: &Ctx,
    ours: impl Fn(&Swapped) -> bool,
    place: &str,
) -> Option<String> {
    if ctx.record().ok {
        return None;
    }
    let last = ctx
        .this_run()
        .results_newest_first::<Swapped>()
        .into_iter()
        // A rollback that found nothing to take back is not a switch: look past it (a second
        // failure path on the same record must find what the first one found).
        .find(|(status, result)| {
            ours(result) && !(*status == Status::Ok && result.rollback && !result.changed)
        });
    match last {
        None => Some(format!(
            "this run never switched {place}: nothing to roll back"
        )),
        // A rollback of this run already ran: a second one would go one release further.
        Some((Status::Ok, result)) if result.marked_failed.is_some() => Some(format!(
            "this run already rolled {place} back: nothing more to roll back"
        )),
        Some((Status::Ok, _)) => None,
        // Switched and failed to switch back: the new release may be live, take it back.
        Some((_, result))
            if result.marked_failed.is_none()
                && result.current.is_some()
                && result.current != result.previous =>
        {
            None
        }
        Some(_) => Some(format!(
            "this run's swap of {place} failed and left the release before in place: nothing to roll back"
        )),
    }
}
