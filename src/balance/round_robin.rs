//! round_robin: servers in config order, one request each (1,2,3,1,2,3).
//!
//! The cursor walks server indices, not candidate positions, so a server that
//! leaves and returns does not shift everyone else's turn.

use super::Candidate;

pub(super) fn pick(cursor: &mut usize, candidates: &[Candidate]) -> Option<usize> {
    // The first candidate at or after the cursor, else wrap to the first one.
    let chosen = candidates
        .iter()
        .find(|c| c.index >= *cursor)
        .or_else(|| candidates.first())?;
    *cursor = chosen.index + 1;
    Some(chosen.index)
}

#[cfg(test)]
mod tests {
    use super::super::{Balancer, candidates};
    use crate::config::Algorithm;
    use rand::SeedableRng;

    #[test]
    fn cycles_in_order() {
        let mut b = Balancer::new(Algorithm::RoundRobin, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let c = candidates(&[1, 1, 1]);
        let got: Vec<usize> = (0..7)
            .map(|_| b.pick(&c, [1, 1, 1, 1].into(), &mut rng).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn skips_a_missing_server_without_shifting_the_others() {
        let mut b = Balancer::new(Algorithm::RoundRobin, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let all = candidates(&[1, 1, 1]);
        let without_1 = vec![all[0], all[2]];
        let ip = [1, 1, 1, 1].into();
        assert_eq!(b.pick(&all, ip, &mut rng), Some(0));
        assert_eq!(b.pick(&without_1, ip, &mut rng), Some(2));
        assert_eq!(b.pick(&without_1, ip, &mut rng), Some(0));
        assert_eq!(b.pick(&all, ip, &mut rng), Some(1));
        assert_eq!(b.pick(&[], ip, &mut rng), None);
    }
}
