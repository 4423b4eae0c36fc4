//! A trajectory as it grows in its slot: segments with their exact tokens and bytes, cut where
//! a code block opens, cut back where a trigger word or the end of thinking is rolled out, and
//! decoded into text once at the end (so a character split across segments stays whole).

use start_schemas::trajectory::{Figure, HintOrigin, Segment, SegmentKind, ToolCall};

/// The trajectory of a slot, built token by token.
#[derive(Default)]
pub struct TrajectoryBuilder {
    /// Finished and current segments.
    pub segments: Vec<Segment>,
    /// Raw bytes of each segment (tokens can split UTF-8 characters; text is decoded at the end).
    bytes: Vec<Vec<u8>>,
    /// The byte length of each token of each segment: where a cut by text falls in tokens.
    lens: Vec<Vec<u32>>,
    /// Tokens after the prompt, generated and inserted.
    pub completion_tokens: u32,
}

impl TrajectoryBuilder {
    /// Appends a token to a segment of `kind`, opening a new segment when the kind changes.
    pub fn push(&mut self, kind: SegmentKind, token: i32, piece: &[u8]) {
        if self.segments.last().is_none_or(|s| s.kind != kind) {
            self.split(kind);
        }
        let last = self.segments.len() - 1;
        self.segments[last].tokens.push(token);
        self.bytes[last].extend_from_slice(piece);
        self.lens[last].push(piece.len() as u32);
        self.completion_tokens += 1;
    }

    /// Starts a new segment of `kind` even if the last one has the same kind.
    pub fn split(&mut self, kind: SegmentKind) {
        self.segments
            .push(Segment::new(kind, String::new(), Vec::new()));
        self.bytes.push(Vec::new());
        self.lens.push(Vec::new());
    }

    /// Records where the current (hint) segment came from.
    pub fn mark_hint(&mut self, origin: HintOrigin) {
        if let Some(s) = self.segments.last_mut() {
            s.hint = Some(origin);
        }
    }

    /// The raw bytes of the current segment.
    pub fn current_bytes(&self) -> &[u8] {
        self.bytes.last().map_or(&[], Vec::as_slice)
    }

    /// The token of the current segment in which byte `at` of its text falls, and the byte
    /// offset where that token starts: segments are cut on token boundaries.
    fn token_cut(&self, at: usize) -> (usize, usize) {
        let Some(lens) = self.lens.last() else {
            return (0, 0);
        };
        let mut offset = 0;
        for (i, &len) in lens.iter().enumerate() {
            let len = len as usize;
            if offset + len > at {
                return (i, offset);
            }
            offset += len;
        }
        (lens.len(), offset)
    }

    /// Moves the tokens of the current segment from byte offset `at` of its text into a new
    /// segment of `kind` (token-aligned: the token in which `at` falls moves too). Returns the
    /// byte offset, in the old segment, where the moved bytes began.
    pub fn split_at_text(&mut self, at: usize, kind: SegmentKind) -> usize {
        if self.segments.is_empty() {
            return 0;
        }
        let (cut, offset) = self.token_cut(at);
        let last = self.segments.len() - 1;
        let moved: Vec<i32> = self.segments[last].tokens.split_off(cut);
        let moved_bytes = self.bytes[last].split_off(offset);
        let moved_lens = self.lens[last].split_off(cut);
        self.segments.push(Segment::new(kind, String::new(), moved));
        self.bytes.push(moved_bytes);
        self.lens.push(moved_lens);
        offset
    }

    /// The bytes of the current segment's token in which byte `at` falls, before `at`: what a
    /// cut back to `at` would drop that is not from `at` on.
    pub fn kept_before(&self, at: usize) -> Vec<u8> {
        let (_, offset) = self.token_cut(at);
        self.current_bytes()[offset..at.max(offset)].to_vec()
    }

    /// Drops the tokens of the current segment from the one in which byte `at` of its text
    /// falls to the end (token-aligned, like the split). Says how many tokens went, the bytes
    /// of the first of them that came before `at` (whitespace before a trigger word, which the
    /// text put in its place must restore), and the text from `at` on that went.
    pub fn cut_back(&mut self, at: usize) -> CutBack {
        if self.segments.is_empty() {
            return CutBack::default();
        }
        let (cut, offset) = self.token_cut(at);
        let last = self.segments.len() - 1;
        let dropped = self.segments[last].tokens.len() - cut;
        let at = at.clamp(offset, self.bytes[last].len());
        let removed = String::from_utf8_lossy(&self.bytes[last][at..]).into_owned();
        let kept = self.bytes[last][offset..at].to_vec();
        self.segments[last].tokens.truncate(cut);
        self.bytes[last].truncate(offset);
        self.lens[last].truncate(cut);
        self.completion_tokens -= dropped as u32;
        CutBack {
            dropped,
            kept,
            removed,
        }
    }

    /// The ids of every token after the prompt from the `from`th on, in order.
    pub fn ids_from(&self, from: usize) -> Vec<i32> {
        let mut skip = from;
        let mut out = Vec::new();
        for seg in &self.segments {
            if skip >= seg.tokens.len() {
                skip -= seg.tokens.len();
                continue;
            }
            out.extend_from_slice(&seg.tokens[skip..]);
            skip = 0;
        }
        out
    }

    /// Relabels the last segment of `from` kind as `to` (the answer after the last insertion).
    pub fn relabel_last(&mut self, from: SegmentKind, to: SegmentKind) {
        if let Some(s) = self.segments.last_mut().filter(|s| s.kind == from) {
            s.kind = to;
        }
    }

    /// The finished segments with their text, empty segments dropped; `tool_calls` and
    /// `figures` are renumbered to the segments kept, so that they keep pointing at their code
    /// segment.
    pub fn finish(mut self, tool_calls: &mut [ToolCall], figures: &mut [Figure]) -> Vec<Segment> {
        // A token may end in the middle of a UTF-8 character and the next segment's first
        // token finish it: the unfinished bytes are carried over, so the character appears
        // whole in the segment where it completes and the joined text is exactly the
        // generated bytes decoded at once.
        let n = self.segments.len();
        let mut carry: Vec<u8> = Vec::new();
        for (i, (seg, bytes)) in self.segments.iter_mut().zip(&self.bytes).enumerate() {
            carry.extend_from_slice(bytes);
            let keep = if i + 1 == n {
                carry.len()
            } else {
                carry.len() - unfinished_tail(&carry)
            };
            seg.text = String::from_utf8_lossy(&carry[..keep]).into_owned();
            carry.drain(..keep);
        }
        let mut new_index = Vec::with_capacity(self.segments.len());
        let mut kept = 0;
        for seg in &self.segments {
            new_index.push(kept);
            if !seg.tokens.is_empty() {
                kept += 1;
            }
        }
        for call in tool_calls {
            call.segment = new_index[call.segment as usize] as u32;
        }
        for fig in figures {
            fig.segment = new_index[fig.segment as usize] as u32;
        }
        self.segments.retain(|s| !s.tokens.is_empty());
        self.segments
    }
}

/// What [`TrajectoryBuilder::cut_back`] took out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CutBack {
    /// Tokens dropped.
    pub dropped: usize,
    /// Bytes of the first dropped token before the cut.
    pub kept: Vec<u8>,
    /// The text from the cut to the end, now gone.
    pub removed: String,
}

/// How many bytes at the end of `b` start a UTF-8 character that is not complete yet.
fn unfinished_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let byte = b[b.len() - back];
        if byte & 0xC0 != 0x80 {
            // The lead byte of the last character: how long that character should be.
            let want = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if want > back { back } else { 0 };
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_segments_is_kept_whole() {
        let mut b = TrajectoryBuilder::default();
        // "é" is C3 A9 and "€" is E2 82 AC; both are cut by token and segment boundaries.
        b.push(SegmentKind::Reasoning, 1, &[b'a', 0xC3]);
        b.push(SegmentKind::Code, 2, &[0xA9, b'b', 0xE2]);
        b.push(SegmentKind::Output, 3, &[0x82]);
        b.push(SegmentKind::Answer, 4, &[0xAC, b'!']);
        let segments = b.finish(&mut [], &mut []);
        let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["a", "éb", "", "€!"]);
        assert_eq!(segments.iter().map(|s| s.tokens.len()).sum::<usize>(), 4);
    }

    #[test]
    fn cutting_back_to_a_word_keeps_the_space_before_it() {
        let pieces: std::collections::HashMap<i32, &[u8]> =
            [(1, &b"So 3."[..]), (2, b" Wait"), (3, b",")].into();
        let mut b = TrajectoryBuilder::default();
        for t in [1, 2, 3] {
            b.push(SegmentKind::Reasoning, t, pieces[&t]);
        }
        // "So 3. Wait," : the trigger starts at byte 6, inside token 2 (" Wait").
        let cut = b.cut_back(6);
        assert_eq!(cut.dropped, 2);
        assert_eq!(cut.kept, b" ");
        assert_eq!(cut.removed, "Wait,");
        assert_eq!(b.current_bytes(), b"So 3.");
        assert_eq!(b.completion_tokens, 1);
    }

    #[test]
    fn invalid_bytes_still_decode_lossily_at_the_end() {
        let mut b = TrajectoryBuilder::default();
        b.push(SegmentKind::Reasoning, 1, &[b'x', 0xFF]);
        b.push(SegmentKind::Answer, 2, &[0xE2, 0x82]);
        let segments = b.finish(&mut [], &mut []);
        assert_eq!(segments[0].text, "x\u{FFFD}");
        assert_eq!(segments[1].text, "\u{FFFD}");
    }
}
