//! least_conn: the candidate with the fewest in-flight requests.
//!
//! Ties rotate: among the tied candidates, the first at or after the cursor
//! wins and the cursor moves past it, so idle servers share the load evenly
//! instead of the first one taking every request.

use super::Candidate;

pub(super) fn pick(cursor: &mut usize, candidates: &[Candidate]) -> Option<usize> {
    let least = candidates.iter().map(|c| c.in_flight).min()?;
    let mut tied = candidates.iter().filter(|c| c.in_flight == least);
    let chosen = tied
        .clone()
        .find(|c| c.index >= *cursor)
        .or_else(|| tied.next())?;
    *cursor = chosen.index + 1;
    Some(chosen.index)
}

#[cfg(test)]
mod tests {
    use super::super::{Balancer, candidates};
    use crate::config::Algorithm;
    use rand::SeedableRng;

    #[test]
    fn fewest_in_flight_wins() {
        let mut b = Balancer::new(Algorithm::LeastConnections, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut c = candidates(&[1, 1, 1]);
        c[0].in_flight = 4;
        c[1].in_flight = 1;
        c[2].in_flight = 2;
        for _ in 0..5 {
            assert_eq!(b.pick(&c, [1, 1, 1, 1].into(), &mut rng), Some(1));
        }
    }

    #[test]
    fn ties_rotate_fairly() {
        let mut b = Balancer::new(Algorithm::LeastConnections, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut c = candidates(&[1, 1, 1]);
        c[1].in_flight = 3;
        let got: Vec<usize> = (0..6)
            .map(|_| b.pick(&c, [1, 1, 1, 1].into(), &mut rng).unwrap())
            .collect();
        assert_eq!(got, [0, 2, 0, 2, 0, 2]);
        c[1].in_flight = 0;
        let got: Vec<usize> = (0..3)
            .map(|_| b.pick(&c, [1, 1, 1, 1].into(), &mut rng).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2]);
    }
}
