//! The mutation engine: input `index` of a campaign is one of the target's seeds with a stack
//! of 1 to 16 mutations drawn from the campaign's seed and the index.

/// splitmix64: the same numbers from the same state on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator at `state`.
    pub fn new(state: u64) -> Self {
        Self(state)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        start_schemas::problem::splitmix64(&mut self.0)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability 1 / n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Longest input made (a mutation that would pass it is cut): large enough for nesting and
/// length bombs, small enough that a million inputs stay quick.
pub const MAX_INPUT: usize = 256 * 1024;

/// Bytes that sit on a boundary of some format or integer.
const INTERESTING: [u8; 16] = [
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'[', b']', b',', b'\n', b'\r', b':', b'$',
];

/// Numbers written over a run of digits: zero, signs, the edges of the integer types, huge
/// and tiny floats, a length that no memory holds.
const NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "99999999999999999999999999999999",
    "1e308",
    "1e-400",
    "NaN",
];

/// Input `index` of the campaign `campaign` over `seeds`, with `dict` the target's tokens.
pub fn input(seeds: &[Vec<u8>], dict: &[Vec<u8>], campaign: u64, index: u64) -> Vec<u8> {
    let mut rng = Rng::new(campaign ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut data = seeds[rng.below(seeds.len())].clone();
    // Mostly few mutations (near the seed, deep in the parser), sometimes many.
    let n = 1usize << rng.below(5);
    for _ in 0..n.min(16) {
        mutate(&mut data, seeds, dict, &mut rng);
    }
    data.truncate(MAX_INPUT);
    data
}

/// One mutation of `data`, in place.
fn mutate(data: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[Vec<u8>], rng: &mut Rng) {
    let len = data.len();
    let at = rng.below(len + 1);
    match rng.below(12) {
        // A flipped bit.
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        // A random byte.
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next_u64() as u8;
        }
        // A byte on a boundary.
        2 if len > 0 => {
            let i = rng.below(len);
            data[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        // Random bytes inserted.
        3 => {
            let bytes: Vec<u8> = (0..1 + rng.below(16))
                .map(|_| rng.next_u64() as u8)
                .collect();
            data.splice(at..at, bytes);
        }
        // A range deleted.
        4 if len > 0 => {
            let end = (at + 1 + rng.below(64)).min(len);
            data.drain(at.min(len - 1)..end);
        }
        // A slice repeated many times: nesting and length bombs.
        5 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let times = 1usize << rng.below(12);
            let chunk = data[start..end].to_vec();
            let mut repeated = Vec::with_capacity(chunk.len() * times);
            for _ in 0..times {
                repeated.extend_from_slice(&chunk);
                if repeated.len() > MAX_INPUT {
                    break;
                }
            }
            data.splice(end..end, repeated);
        }
        // Spliced with another seed: this one's head, that one's tail.
        6 => {
            let other = &seeds[rng.below(seeds.len())];
            let from = rng.below(other.len() + 1);
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        // A token of the format inserted.
        7 if !dict.is_empty() => {
            let token = dict[rng.below(dict.len())].clone();
            data.splice(at..at, token);
        }
        // A token of the format written over what was there.
        8 if !dict.is_empty() => {
            let token = &dict[rng.below(dict.len())];
            let end = (at + token.len()).min(len);
            data.splice(at..end, token.iter().copied());
        }
        // Cut short.
        9 if len > 0 => data.truncate(rng.below(len)),
        // A run of digits replaced by a boundary number.
        10 => {
            if let Some(start) = (0..len)
                .map(|k| (at + k) % len.max(1))
                .find(|&i| data[i].is_ascii_digit())
            {
                let end = (start..len)
                    .find(|&i| !data[i].is_ascii_digit())
                    .unwrap_or(len);
                let n = NUMBERS[rng.below(NUMBERS.len())];
                data.splice(start..end, n.bytes());
            }
        }
        // Two ranges swapped.
        _ if len > 2 => {
            let a = rng.below(len - 1);
            let b = a + 1 + rng.below(len - a - 1);
            data.swap(a, b);
        }
        _ => data.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_a_function_of_the_campaign_and_its_index() {
        let seeds = vec![
            b"{\"id\": \"p1\", \"answer\": \"42\"}".to_vec(),
            b"[1, 2]".to_vec(),
        ];
        let dict = vec![b"{".to_vec(), b"\\u0000".to_vec()];
        let a: Vec<Vec<u8>> = (0..200).map(|i| input(&seeds, &dict, 7, i)).collect();
        let b: Vec<Vec<u8>> = (0..200).map(|i| input(&seeds, &dict, 7, i)).collect();
        assert_eq!(a, b);
        let c: Vec<Vec<u8>> = (0..200).map(|i| input(&seeds, &dict, 8, i)).collect();
        assert_ne!(a, c);
        // Varied: most inputs differ from their seed and from one another.
        let distinct: std::collections::HashSet<&Vec<u8>> = a.iter().collect();
        assert!(distinct.len() > 150, "{}", distinct.len());
        assert!(a.iter().all(|x| x.len() <= MAX_INPUT));
    }
}
