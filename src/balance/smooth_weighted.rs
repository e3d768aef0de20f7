//! smooth_weighted: nginx's smooth weighted round robin.
//!
//! Each pick adds every candidate's weight to its `current`, takes the largest
//! and subtracts the total from it. Weights 3:1 give `a a b a`-like
//! interleavings (`a b a a` rotated), never a burst of one server.

use super::Candidate;

pub(super) fn pick(current: &mut [i64], candidates: &[Candidate]) -> Option<usize> {
    let mut total: i64 = 0;
    let mut best: Option<usize> = None;
    for c in candidates {
        let slot = current.get_mut(c.index)?;
        *slot += i64::from(c.weight);
        let value = *slot;
        total += i64::from(c.weight);
        if best.is_none_or(|b| value > current_at(current, b)) {
            best = Some(c.index);
        }
    }
    let best = best?;
    current[best] -= total;
    Some(best)
}

fn current_at(current: &[i64], index: usize) -> i64 {
    current.get(index).copied().unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::super::{Balancer, candidates};
    use crate::config::Algorithm;
    use rand::SeedableRng;

    fn sequence(weights: &[u32], n: usize) -> Vec<usize> {
        let mut b = Balancer::new(Algorithm::WeightedRoundRobin, weights.len());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let c = candidates(weights);
        (0..n)
            .map(|_| b.pick(&c, [1, 1, 1, 1].into(), &mut rng).unwrap())
            .collect()
    }

    #[test]
    fn three_to_one_interleaves() {
        assert_eq!(sequence(&[3, 1], 8), [0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn nginx_reference_sequence() {
        // The example from nginx's commit introducing smooth WRR: {a:5, b:1, c:1}.
        assert_eq!(sequence(&[5, 1, 1], 7), [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn shares_match_weights_without_bursts() {
        let s = sequence(&[3, 1], 400);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 300);
        // Never more than three of `a` in a row, never two `b`s in a row.
        let mut run = 0;
        for w in s.windows(2) {
            run = if w[0] == 0 && w[1] == 0 { run + 1 } else { 0 };
            assert!(run < 3, "burst of a");
            assert!(!(w[0] == 1 && w[1] == 1), "burst of b");
        }
    }

    #[test]
    fn equal_weights_are_round_robin() {
        assert_eq!(sequence(&[1, 1, 1], 6), [0, 1, 2, 0, 1, 2]);
    }
}
