//! What the translator tests share: reading fixtures, and the property every stream decoder
//! must have (the same events however the stream is cut).

use serde_json::Value;

/// The bytes of `tests/fixtures/<format>/<name>`.
pub(crate) fn fixture(format: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/{format}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// A fixture parsed as JSON.
#[allow(
    dead_code,
    reason = "the Anthropic tests read their JSON fixtures otherwise"
)]
pub(crate) fn fixture_json(format: &str, name: &str) -> Value {
    serde_json::from_slice(&fixture(format, name)).unwrap()
}

/// A small seeded generator (xorshift64*), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    }
}

/// Asserts that `decode` (which feeds a fresh decoder the pieces in order) gives what it gives
/// for the whole stream when the stream is cut at every single position, fed byte by byte, and
/// cut at up to `max_cuts` random positions in 300 rounds seeded with `seed`.
pub(crate) fn assert_splits_decode_the_same<T: PartialEq + std::fmt::Debug>(
    name: &str,
    stream: &[u8],
    seed: u64,
    max_cuts: usize,
    decode: impl Fn(&[&[u8]]) -> T,
) {
    let whole = decode(&[stream]);
    for cut in 0..=stream.len() {
        let (head, tail) = stream.split_at(cut);
        assert_eq!(decode(&[head, tail]), whole, "{name} cut at {cut}");
    }
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(&bytewise), whole, "{name} byte by byte");
    let mut rng = Rng(seed);
    for round in 0..300 {
        let mut cuts: Vec<usize> = (0..1 + rng.below(max_cuts))
            .map(|_| rng.below(stream.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        let mut from = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            pieces.push(&stream[from..cut]);
            from = cut;
        }
        assert_eq!(decode(&pieces), whole, "{name} round {round}: {pieces:?}");
    }
}
