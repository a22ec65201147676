//! "Flags after a target apply to it": ugw-wait-healthy's `--url … --status 200` and
//! ugw-verify's `--http … --expect …` read an assertion flag given after a target as that
//! target's own, and one given before the first target as every target's. Read once from
//! clap's matches with their positions ([`positioned`]), they are sorted into scopes here.

use clap::ArgMatches;
use clap::parser::ValueSource;

/// A flag's value with its position on the command line (clap's index), to tell which
/// target it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positioned<T> {
    pub index: usize,
    pub value: T,
}

/// The values of flag `id` with their positions on the command line, as given there
/// (defaults have no position and are left out).
#[must_use]
pub fn positioned<T: Clone + Send + Sync + 'static>(
    matches: &ArgMatches,
    id: &str,
) -> Vec<Positioned<T>> {
    if matches.value_source(id) != Some(ValueSource::CommandLine) {
        return Vec::new();
    }
    match (matches.indices_of(id), matches.get_many::<T>(id)) {
        (Some(indices), Some(values)) => indices
            .zip(values.cloned())
            .map(|(index, value)| Positioned { index, value })
            .collect(),
        _ => Vec::new(),
    }
}

/// Where the targets start on the command line, in order: a flag's scope is the target it
/// follows, or none (every target's) before the first.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    starts: Vec<usize>,
}

impl Scopes {
    /// `starts`: the positions of the targets, in any order.
    #[must_use]
    pub fn new(mut starts: Vec<usize>) -> Self {
        starts.sort_unstable();
        Scopes { starts }
    }

    /// The target (its place among the targets) that a flag at `index` follows; `None`
    /// before the first target.
    #[must_use]
    pub fn owner(&self, index: usize) -> Option<usize> {
        self.starts.iter().rposition(|start| *start < index)
    }

    /// The values that apply to target `target`: those before the first target, then its
    /// own (so that the last is the target's own when it has one).
    #[must_use]
    pub fn values_for<T: Clone>(&self, given: &[Positioned<T>], target: usize) -> Vec<T> {
        given
            .iter()
            .filter(|p| self.owner(p.index).is_none_or(|owner| owner == target))
            .map(|p| p.value.clone())
            .collect()
    }

    /// The one value for target `target`: its own, else the one for every target.
    #[must_use]
    pub fn one_for<T: Clone>(&self, given: &[Positioned<T>], target: usize) -> Option<T> {
        self.values_for(given, target).pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn matches(args: &[&str]) -> ArgMatches {
        Command::new("t")
            .arg(Arg::new("url").long("url").action(ArgAction::Append))
            .arg(Arg::new("status").long("status").action(ArgAction::Append))
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn a_flag_after_a_target_is_its_own_and_one_before_the_first_is_everyones() {
        let m = matches(&[
            "--status", "200", "--url", "a", "--url", "b", "--status", "204", "--url", "c",
        ]);
        let urls = positioned::<String>(&m, "url");
        let status = positioned::<String>(&m, "status");
        let scopes = Scopes::new(urls.iter().map(|p| p.index).collect());
        assert_eq!(scopes.values_for(&status, 0), ["200"]);
        assert_eq!(scopes.values_for(&status, 1), ["200", "204"]);
        assert_eq!(scopes.one_for(&status, 1).as_deref(), Some("204"));
        assert_eq!(scopes.one_for(&status, 2).as_deref(), Some("200"));
        assert_eq!(scopes.owner(status[0].index), None);
        assert_eq!(scopes.owner(status[1].index), Some(1));
        assert!(positioned::<String>(&matches(&["--url", "a"]), "status").is_empty());
    }
}
