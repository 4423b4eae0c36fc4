//! The text that overlap is measured on: a question's words, lower-cased, with punctuation and
//! LaTeX markup split away, so that "$\frac{1}{2}$" and "\frac 1 2" meet; and hashed word
//! n-grams over them, the unit that contamination reports (OpenAI's, Tülu's) use.

/// The normalised words of `text`: maximal runs of letters and digits, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// FNV-1a over bytes, continuing from `state`: fast, deterministic across runs and versions.
fn fnv(mut state: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        state ^= u64::from(*b);
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// A hash of a run of words, separators included so that ("ab", "c") and ("a", "bc") differ.
pub fn hash_words(words: &[String]) -> u64 {
    words
        .iter()
        .fold(FNV_OFFSET, |h, w| fnv(fnv(h, w.as_bytes()), b" "))
}

/// The hashes of every `n`-word window of `words` (none when there are fewer than `n`).
pub fn ngrams(words: &[String], n: usize) -> impl Iterator<Item = u64> + '_ {
    words.windows(n.max(1)).map(hash_words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_case_do_not_matter_but_words_do() {
        assert_eq!(
            words("Find $\\frac{1}{2}$ of X."),
            ["find", "frac", "1", "2", "of", "x"]
        );
        assert_eq!(
            words("find \\frac 1 2 OF x"),
            words("Find $\\frac{1}{2}$ of X.")
        );
        assert_ne!(hash_words(&words("ab c")), hash_words(&words("a bc")));
    }

    #[test]
    fn ngrams_slide_one_word_at_a_time() {
        let w = words("a b c d");
        assert_eq!(ngrams(&w, 2).count(), 3);
        assert_eq!(ngrams(&w, 5).count(), 0);
        let shifted = words("z a b c");
        let common: Vec<u64> = ngrams(&w, 3)
            .filter(|h| ngrams(&shifted, 3).any(|g| g == *h))
            .collect();
        assert_eq!(common.len(), 1, "only \"a b c\" is shared");
    }
}
