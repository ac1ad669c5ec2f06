//! Ordering of `_ldap._tcp` SRV targets (RFC 2782, "Usage rules").
//!
//! Pure code, no I/O: the random numbers come from the caller, so the order
//! is testable deterministically.

/// One SRV record for an LDAP service: where a directory may be asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvTarget {
    /// Lower numbers are tried first.
    pub priority: u16,
    /// Relative share of the selections among targets of one priority.
    pub weight: u16,
    /// TCP port of the LDAP server.
    pub port: u16,
    /// Host name of the LDAP server, without the trailing dot.
    pub target: String,
}

impl std::fmt::Display for SrvTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.target, self.port)
    }
}

/// Puts SRV targets in the order in which they are to be tried.
///
/// RFC 2782: targets are tried in ascending priority. Within one priority a
/// target is chosen at random with probability proportional to its weight,
/// then removed, and the selection repeats until none is left. Where RFC 2782
/// merely gives weight-0 targets a very small chance of early selection, hisp
/// puts every weight-0 target after every positive-weight target of the same
/// priority (issue 4; the Direct Certificate Discovery Tool checks this),
/// ordered among themselves uniformly at random.
///
/// `pick(bound)` must return a uniformly random number in `0..bound`
/// (`bound` is never 0); out-of-range answers are clamped to `bound - 1`.
pub fn order_srv_targets<F>(mut targets: Vec<SrvTarget>, mut pick: F) -> Vec<SrvTarget>
where
    F: FnMut(u64) -> u64,
{
    // A stable sort keeps the given order within a priority; the random
    // selection below decides that order anyway.
    targets.sort_by_key(|t| t.priority);
    let mut ordered = Vec::with_capacity(targets.len());
    for group in targets.chunk_by(|a, b| a.priority == b.priority) {
        let (mut weighted, mut zero): (Vec<SrvTarget>, Vec<SrvTarget>) =
            group.iter().cloned().partition(|t| t.weight > 0);
        while !weighted.is_empty() {
            let total: u64 = weighted.iter().map(|t| u64::from(t.weight)).sum();
            let chosen = pick(total).min(total - 1);
            let index = select_by_running_sum(&weighted, chosen);
            ordered.push(weighted.remove(index));
        }
        while !zero.is_empty() {
            let bound = zero.len() as u64;
            let index = usize::try_from(pick(bound).min(bound - 1)).unwrap_or(0);
            ordered.push(zero.remove(index));
        }
    }
    ordered
}

/// RFC 2782: the first target whose running sum of weights exceeds the random
/// number. `chosen` is below the total, so some target always qualifies.
fn select_by_running_sum(weighted: &[SrvTarget], chosen: u64) -> usize {
    let mut running = 0u64;
    for (index, target) in weighted.iter().enumerate() {
        running += u64::from(target.weight);
        if running > chosen {
            return index;
        }
    }
    weighted.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(priority: u16, weight: u16, name: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 389,
            target: name.to_string(),
        }
    }

    fn names(ordered: &[SrvTarget]) -> Vec<&str> {
        ordered.iter().map(|t| t.target.as_str()).collect()
    }

    #[test]
    fn lower_priority_number_is_tried_first_rfc2782() {
        let targets = vec![t(20, 1, "c"), t(0, 1, "a"), t(10, 1, "b")];
        let ordered = order_srv_targets(targets, |_| 0);
        assert_eq!(names(&ordered), ["a", "b", "c"]);
    }

    #[test]
    fn weight_zero_targets_come_last_rfc2782() {
        // Whatever the random numbers, 65535 is tried before 0.
        for answer in [0u64, 1, 65534, 65535, u64::MAX] {
            let targets = vec![t(0, 0, "zero"), t(0, 65535, "heavy")];
            let ordered = order_srv_targets(targets, |_| answer);
            assert_eq!(names(&ordered), ["heavy", "zero"], "pick -> {answer}");
        }
    }

    #[test]
    fn weight_zero_target_of_a_lower_priority_number_still_comes_first_rfc2782() {
        let targets = vec![t(1, 65535, "later"), t(0, 0, "first")];
        let ordered = order_srv_targets(targets, |_| 0);
        assert_eq!(names(&ordered), ["first", "later"]);
    }

    #[test]
    fn random_number_selects_by_running_sum_rfc2782() {
        // Weights 10, 20, 30: running sums 10, 30, 60.
        let cases: [(u64, &str); 6] = [
            (0, "w10"),
            (9, "w10"),
            (10, "w20"),
            (29, "w20"),
            (30, "w30"),
            (59, "w30"),
        ];
        for (first_pick, expected) in cases {
            let targets = vec![t(0, 10, "w10"), t(0, 20, "w20"), t(0, 30, "w30")];
            let mut calls = 0;
            let ordered = order_srv_targets(targets, |bound| {
                calls += 1;
                if calls == 1 {
                    assert_eq!(bound, 60);
                    first_pick
                } else {
                    0
                }
            });
            assert_eq!(ordered[0].target, expected, "pick {first_pick}");
            assert_eq!(ordered.len(), 3);
        }
    }

    #[test]
    fn selected_target_leaves_the_running_sum_rfc2782() {
        let targets = vec![t(0, 10, "w10"), t(0, 20, "w20"), t(0, 30, "w30")];
        let mut bounds = Vec::new();
        let ordered = order_srv_targets(targets, |bound| {
            bounds.push(bound);
            bound - 1
        });
        // The last target is picked each time: w30, then w20, then w10.
        assert_eq!(names(&ordered), ["w30", "w20", "w10"]);
        assert_eq!(bounds, [60, 30, 10]);
    }

    #[test]
    fn selection_is_proportional_to_weight_rfc2782() {
        // A small deterministic generator stands in for the system RNG.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut first_counts = [0u32; 2];
        for _ in 0..4000 {
            let targets = vec![t(0, 1, "light"), t(0, 3, "heavy")];
            let ordered = order_srv_targets(targets, |bound| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % bound
            });
            let slot = usize::from(ordered[0].target == "heavy");
            first_counts[slot] += 1;
        }
        let heavy_share = f64::from(first_counts[1]) / 4000.0;
        assert!((0.70..0.80).contains(&heavy_share), "share {heavy_share}");
    }

    #[test]
    fn zero_weight_targets_are_all_kept_rfc2782() {
        let targets = vec![t(0, 0, "a"), t(0, 0, "b"), t(0, 0, "c")];
        let ordered = order_srv_targets(targets, |bound| bound - 1);
        assert_eq!(names(&ordered), ["c", "b", "a"]);
    }

    #[test]
    fn empty_list_stays_empty() {
        assert!(order_srv_targets(Vec::new(), |_| 0).is_empty());
    }
}
