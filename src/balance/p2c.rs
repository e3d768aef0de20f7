//! p2c: power of two choices. Two distinct random candidates; the one with
//! fewer in-flight requests wins (the first drawn on a tie).

use rand::RngExt;

use super::Candidate;

pub(super) fn pick(candidates: &[Candidate], rng: &mut impl rand::Rng) -> Option<usize> {
    match candidates.len() {
        0 => None,
        1 => Some(candidates[0].index),
        n => {
            let a = rng.random_range(0..n);
            // A second draw from the n-1 others keeps the two distinct.
            let mut b = rng.random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (&candidates[a], &candidates[b]);
            Some(if b.in_flight < a.in_flight {
                b.index
            } else {
                a.index
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Balancer, candidates};
    use crate::config::Algorithm;
    use rand::SeedableRng;

    #[test]
    fn never_picks_the_most_loaded_of_three() {
        let mut b = Balancer::new(Algorithm::PowerOfTwo, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut c = candidates(&[1, 1, 1]);
        c[0].in_flight = 9;
        c[1].in_flight = 1;
        c[2].in_flight = 5;
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            counts[b.pick(&c, [1, 1, 1, 1].into(), &mut rng).unwrap()] += 1;
        }
        // Two distinct draws: the most loaded can never win, the least loaded
        // wins whenever it is drawn (2/3 of the time).
        assert_eq!(counts[0], 0);
        assert!((1850..2150).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn spreads_when_idle() {
        let mut b = Balancer::new(Algorithm::PowerOfTwo, 4);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let c = candidates(&[1, 1, 1, 1]);
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[b.pick(&c, [1, 1, 1, 1].into(), &mut rng).unwrap()] += 1;
        }
        for n in counts {
            assert!((850..1150).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn single_candidate() {
        let mut b = Balancer::new(Algorithm::PowerOfTwo, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let c = candidates(&[1, 1, 1]);
        assert_eq!(b.pick(&c[2..], [1, 1, 1, 1].into(), &mut rng), Some(2));
    }
}
