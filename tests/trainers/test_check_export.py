"""The checker's own tests: it must catch a loss mask or a token id off by one.

Runs with any Python (no torch): `python3 -m unittest tests/trainers/test_check_export.py`.
The trajectory below has the shape of a real row (prompt ids with a generation prefix, a hint,
code, its tool output, an answer and the end-of-turn token); each id stands for one character
so that a toy decoder can spell the text.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import IGNORE, check_masked_text, check_sequence, expected, id_drift  # noqa: E402

ALPHABET = "".join(sorted(set("<>|imstartendu\n PQwhy?ok`python0123456789()=+.WaA:,lc")))


def ids_of(text):
    return [ALPHABET.index(c) for c in text]


def decode(ids):
    return "".join(ALPHABET[i] for i in ids)


def seg(kind, text):
    return {"kind": kind, "text": text, "tokens": ids_of(text)}


TRAJ = {
    "prompt_token_ids": ids_of("<|im|>user\nQ?<|im|>a\n<t>\n"),
    "generation_prefix_tokens": 4,
    "generation_prefix": "<t>\n",
    "segments": [
        seg("reasoning", "why 1+1 "),
        seg("hint", "Wait, "),
        seg("code", "```python\nprint(1+1)\n```\n"),
        seg("output", "```output\n2\n```\n"),
        seg("answer", "A: 2"),
    ],
    "end_of_turn_token": ALPHABET.index("|"),
    "end_of_turn": "|",
}


def labels_of(ids, mask):
    return [i if m else IGNORE for i, m in zip(ids, mask)]


class CheckSequence(unittest.TestCase):
    def setUp(self):
        self.ids, self.mask, self.where = expected(TRAJ)
        self.labels = labels_of(self.ids, self.mask)

    def test_the_exact_sequence_passes(self):
        self.assertEqual(check_sequence("row", self.ids, self.mask, self.where, self.ids, self.labels), [])
        self.assertEqual(check_masked_text("row", decode, TRAJ, self.ids, self.labels), [])

    def test_the_mask_covers_the_prefix_and_end_of_turn_but_not_prompt_or_output(self):
        text_in = decode([i for i, m in zip(self.ids, self.mask) if m])
        self.assertEqual(text_in, "<t>\nwhy 1+1 Wait, ```python\nprint(1+1)\n```\nA: 2|")

    def test_a_mask_shifted_by_one_at_the_tool_output_fails(self):
        start = self.where.index("segment 3 (output)")
        for shift in (-1, 1):
            mask = list(self.mask)
            if shift == -1:  # one token early: the code's last token left out of the loss
                mask[start - 1] = 0
            else:  # one token late: the output's first token under the loss
                mask[start] = 1
            labels = labels_of(self.ids, mask)
            fails = check_sequence("row", self.ids, self.mask, self.where, self.ids, labels)
            self.assertEqual(len(fails), 1, fails)
            self.assertIn("segment", fails[0])
            self.assertTrue(check_masked_text("row", decode, TRAJ, self.ids, labels))

    def test_a_mask_shifted_at_the_prompt_end_fails(self):
        mask = list(self.mask)
        first = self.mask.index(1)
        mask[first] = 0
        fails = check_sequence("row", self.ids, self.mask, self.where, self.ids, labels_of(self.ids, mask))
        self.assertIn("generation prefix", fails[0])

    def test_the_end_of_turn_token_left_out_fails(self):
        mask = list(self.mask)
        mask[-1] = 0
        fails = check_sequence("row", self.ids, self.mask, self.where, self.ids, labels_of(self.ids, mask))
        self.assertIn("end of turn", fails[0])

    def test_a_token_dropped_at_a_tool_boundary_fails(self):
        # verl #6501: a newline token lost where the tool output begins.
        start = self.where.index("segment 3 (output)")
        ids = self.ids[: start - 1] + self.ids[start:]
        mask = self.mask[: start - 1] + self.mask[start:]
        fails = check_sequence("row", self.ids, self.mask, self.where, ids, labels_of(ids, mask))
        self.assertTrue(any("tokens where the trajectory has" in f for f in fails), fails)
        self.assertTrue(any("segment 2 (code)" in f for f in fails), fails)

    def test_an_id_changed_under_a_right_mask_fails(self):
        ids = list(self.ids)
        i = self.where.index("segment 2 (code)")
        ids[i] = ALPHABET.index("P")
        fails = check_sequence("row", self.ids, self.mask, self.where, ids, labels_of(ids, self.mask))
        self.assertIn("token %d (segment 2 (code))" % i, fails[0])

    def test_a_label_that_is_not_its_token_fails(self):
        labels = list(self.labels)
        i = self.where.index("segment 4 (answer)")
        labels[i] = labels[i + 1]
        fails = check_sequence("row", self.ids, self.mask, self.where, self.ids, labels)
        self.assertIn("has label", fails[0])

    def test_drift_counts_the_positions_between_the_common_ends(self):
        self.assertEqual(id_drift([1, 2, 3, 4], [1, 2, 3, 4]), 0)
        self.assertEqual(id_drift([1, 2, 3, 4], [1, 9, 3, 4]), 1)
        self.assertEqual(id_drift([1, 2, 3, 4], [1, 5, 4]), 2)


if __name__ == "__main__":
    unittest.main()
