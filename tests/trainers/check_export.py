"""Do real trainers read start's SFT export as start means it?

Reads a dataset start generated (its trajectory shards: the reference, as the model produced
it) and the `startctl export` of it, then hands the export to the trainers' own loaders and
checks, token by token, what each would train on:

- TRL (`SFTTrainer`, the pre-tokenised columns `input_ids` + `labels`): a few real optimiser
  steps on the default model; every batch the trainer computes a loss on is recorded and must
  hold the row's own token ids (prompt ids, generated and inserted ids, the end-of-turn id) with
  the loss on exactly the model's text (generation prefix, reasoning, hints, code, answer, end
  of turn) and on no prompt or tool-output token. The same export's `prompt`/`completion` text
  columns through TRL's own tokenisation are measured too: how many rows come back with other
  ids than the model generated, and how many put tool output under the loss (that shape cannot
  mask it).
- LLaMA-Factory (`formatting: sharegpt`, `template: empty`, `observation` turns) and axolotl
  (`type: input_output`, the `segments` column): their loaders tokenise each turn or segment
  again, so the ids are compared (and the differences counted) and the loss mask is checked by
  text: the tokens they leave out of the loss must decode to exactly the prompt and the tool
  outputs.

    check_export.py --dataset D --export E --model HF_DIR [--steps N] [--report R.json]

Exit 0 when every check holds; 1 with each failure named (row, position, piece). Needs the
trainer environment scripts/setup-trainer makes (torch, transformers, trl, datasets and the two
loaders); the pure checks (`check_sequence`, `check_masked_text`) need only Python.
"""
import argparse
import glob
import json
import math
import os
import sys
import tempfile

IGNORE = -100


# --- the reference: the trajectory as generated -------------------------------------------

def trajectories(dataset):
    """The dataset's trajectory rows by (problem_id, sample_index), read with pyarrow."""
    import pyarrow.parquet as pq

    rows = {}
    for path in sorted(glob.glob(os.path.join(dataset, "data", "*.parquet"))):
        for r in pq.read_table(path).to_pylist():
            rows[(r["problem_id"], r["sample_index"])] = r
    return rows


def pieces(traj):
    """The sequence as the model saw it, in pieces: (name, token ids, trained?, text or None).

    The template's prompt tokens are not trained on; the generation prefix (tokenised on its
    own, the last `generation_prefix_tokens` of the prompt ids) is, as the first text of the
    assistant's turn; every segment is, except tool output; the end-of-turn token is.
    """
    prompt_ids = list(traj["prompt_token_ids"])
    n_prefix = traj["generation_prefix_tokens"] or 0
    cut = len(prompt_ids) - n_prefix
    out = [("prompt", prompt_ids[:cut], False, None)]
    if n_prefix:
        out.append(("generation prefix", prompt_ids[cut:], True, traj["generation_prefix"]))
    for i, s in enumerate(traj["segments"]):
        out.append((f"segment {i} ({s['kind']})", list(s["tokens"]), s["kind"] != "output", s["text"]))
    if traj.get("end_of_turn_token") is not None:
        out.append(("end of turn", [traj["end_of_turn_token"]], True, traj["end_of_turn"]))
    return out


def expected(traj):
    """(ids, mask, where): the token ids, 1 where the loss applies, and each position's piece."""
    ids, mask, where = [], [], []
    for name, toks, trained, _ in pieces(traj):
        ids += toks
        mask += [int(trained)] * len(toks)
        where += [name] * len(toks)
    return ids, mask, where


# --- the checks ----------------------------------------------------------------------------

def check_sequence(label, exp_ids, exp_mask, where, seen_ids, seen_labels):
    """What a trainer computed its loss on against the reference; a list of failures."""
    fails = []
    if len(seen_ids) != len(exp_ids):
        fails.append(f"{label}: {len(seen_ids)} tokens where the trajectory has {len(exp_ids)}")
    for i, (e, s) in enumerate(zip(exp_ids, seen_ids)):
        if e != s:
            fails.append(f"{label}: token {i} ({where[i]}) is id {s}, the model's was {e}")
            break
    if len(seen_labels) != len(seen_ids):
        fails.append(f"{label}: {len(seen_labels)} labels for {len(seen_ids)} tokens")
    for i, (m, lab) in enumerate(zip(exp_mask, seen_labels)):
        trained = lab != IGNORE
        if trained != bool(m):
            state = "under the loss" if trained else "left out of the loss"
            fails.append(f"{label}: token {i} ({where[i]}) is {state}, it should {'' if m else 'not '}be")
            break
        if trained and i < len(seen_ids) and lab != seen_ids[i]:
            fails.append(f"{label}: token {i} ({where[i]}) has label {lab} for id {seen_ids[i]}")
            break
    return fails


def runs(ids, labels, trained):
    """Maximal runs of consecutive tokens whose loss state is `trained`."""
    out, cur = [], []
    for t, lab in zip(ids, labels):
        if (lab != IGNORE) == trained:
            cur.append(t)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def check_masked_text(label, decode, traj, ids, labels):
    """The loss mask by text, for loaders that tokenise again: the tokens out of the loss must
    decode to the prompt, then each tool output, in order; those under it to the rest."""
    ps = pieces(traj)
    want_out, want_in, cur, cur_trained = [], [], "", None
    for name, toks, trained, text in ps:
        text = decode(toks) if text is None else text
        if cur_trained is not None and trained != cur_trained:
            (want_in if cur_trained else want_out).append(cur)
            cur = ""
        cur += text
        cur_trained = trained
    (want_in if cur_trained else want_out).append(cur)
    got_out = [decode(r) for r in runs(ids, labels, False)]
    got_in = [decode(r) for r in runs(ids, labels, True)]
    fails = []
    if got_out != want_out:
        fails.append(f"{label}: out of the loss {_first_diff(got_out, want_out)}")
    if got_in != want_in:
        fails.append(f"{label}: under the loss {_first_diff(got_in, want_in)}")
    return fails


def _first_diff(got, want):
    if len(got) != len(want):
        return f"{len(got)} runs of text where there should be {len(want)}: {[g[:40] for g in got][:6]}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"run {i} is {g[:80]!r}, should be {w[:80]!r}"
    return "differs"


def id_drift(exp_ids, ids):
    """How many positions differ after aligning from both ends (0 when identical)."""
    if exp_ids == ids:
        return 0
    head = 0
    while head < min(len(exp_ids), len(ids)) and exp_ids[head] == ids[head]:
        head += 1
    tail = 0
    while tail < min(len(exp_ids), len(ids)) - head and exp_ids[-1 - tail] == ids[-1 - tail]:
        tail += 1
    return max(len(exp_ids), len(ids)) - head - tail


# --- the trainers ---------------------------------------------------------------------------

def run_trl(export_file, model_dir, refs, steps, work):
    """TRL's SFTTrainer on the export's pre-tokenised columns: real steps, every batch recorded."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    ds = load_dataset("parquet", data_files=export_file, split="train")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    seen = []

    class Recording(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            for ids, labels, am in zip(inputs["input_ids"], inputs["labels"], inputs["attention_mask"]):
                n = int(am.sum())
                seen.append((ids[:n].tolist(), labels[:n].tolist()))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    batch = 2
    config = SFTConfig(
        output_dir=os.path.join(work, "trl"), max_steps=max(steps, math.ceil(len(ds) / batch)),
        per_device_train_batch_size=batch, learning_rate=1e-5, logging_steps=1, save_strategy="no",
        report_to=[], max_length=None, use_cpu=True, seed=0, dataloader_num_workers=0,
    )
    trainer = Recording(model=model, args=config, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    fails = []
    by_ids = {}
    for key, ref in refs.items():
        by_ids.setdefault(tuple(expected(ref)[0]), key)
    covered = set()
    for ids, labels in seen:
        key = by_ids.get(tuple(ids))
        if key is None:
            # Not the ids of any trajectory: name the closest by length for the message.
            near = min(refs, key=lambda k: abs(len(expected(refs[k])[0]) - len(ids)))
            e = expected(refs[near])
            fails += check_sequence(f"trl {near[0]}#{near[1]}", e[0], e[1], e[2], ids, labels)
            continue
        covered.add(key)
        e = expected(refs[key])
        fails += check_sequence(f"trl {key[0]}#{key[1]}", e[0], e[1], e[2], ids, labels)
    missing = [k for k in (tuple(r) for r in zip(ds["problem_id"], ds["sample_index"])) if k not in covered]
    if missing:
        fails.append(f"trl: {len(missing)} exported rows never reached the loss, e.g. {missing[0]}")
    if not losses or not all(math.isfinite(x) for x in losses):
        fails.append(f"trl: losses {losses}")
    # The text shape (`prompt`/`completion`) through TRL's own tokenisation, for comparison.
    text_ds = ds.select_columns(["prompt", "completion"])
    text_trainer = SFTTrainer(model=model, args=SFTConfig(
        output_dir=os.path.join(work, "trl-text"), max_steps=1, report_to=[], max_length=None, use_cpu=True),
        train_dataset=text_ds, processing_class=tok)
    drift_rows, drift_tokens, output_trained = 0, 0, 0
    for i, ex in enumerate(text_trainer.train_dataset):
        ref = refs[(ds[i]["problem_id"], ds[i]["sample_index"])]
        e_ids, e_mask, _ = expected(ref)
        d = id_drift(e_ids, ex["input_ids"])
        drift_rows += d > 0
        drift_tokens += d
        output_trained += any(s["kind"] == "output" for s in ref["segments"])
    return fails, {
        "rows": len(ds), "batches_recorded": len(seen), "steps": result.global_step,
        "losses": [round(x, 4) for x in losses],
        "text_columns": {"rows_with_other_ids": drift_rows, "tokens_differing": drift_tokens,
                         "rows_with_tool_output_under_the_loss": output_trained},
    }


def run_llamafactory(export_dir, model_dir, refs, work):
    """LLaMA-Factory's own data pipeline: sharegpt with observation turns, the empty template."""
    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from transformers import AutoTokenizer

    data_dir = os.path.join(work, "lf-data")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "dataset_info.json"), "w") as f:
        json.dump({"start": {
            "file_name": os.path.abspath(os.path.join(export_dir, "sft.jsonl")), "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "assistant_tag": "gpt", "observation_tag": "observation"},
        }}, f)
    model_args, data_args, training_args, _, _ = get_train_args({
        "model_name_or_path": model_dir, "stage": "sft", "do_train": True, "finetuning_type": "full",
        "dataset": "start", "dataset_dir": data_dir, "template": "empty", "cutoff_len": 1 << 20,
        "output_dir": os.path.join(work, "lf-out"), "overwrite_cache": True, "report_to": "none",
        "use_cpu": True,
    })
    # The tokenizer as transformers loads it: `llamafactory.model` (its own loader) imports
    # TRL 0.x's value-head model, which TRL 1.x no longer has.
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", tokenizer=tokenizer)
    return tokenizer, list(module["train_dataset"])


def run_axolotl(export_file, tokenizer):
    """axolotl's `type: input_output` strategy on the `segments` column."""
    from types import SimpleNamespace

    from axolotl.prompt_strategies.input_output import load
    from datasets import load_dataset

    # The two settings the strategy reads of axolotl's config (a plain namespace: axolotl's
    # own config class needs packages its data loader does not).
    strategy = load(tokenizer, SimpleNamespace(train_on_inputs=False, sequence_len=1 << 20))
    ds = load_dataset("parquet", data_files=export_file, split="train")
    return [strategy.tokenize_prompt(row) for row in ds]


def compare_loader(name, rows, out, refs, decode):
    """A re-tokenising loader's rows against the reference: ids drift counted, mask by text."""
    fails, drift_rows, drift_tokens = [], 0, 0
    keys = list(zip(rows["problem_id"], rows["sample_index"]))
    if len(out) != len(keys):
        fails.append(f"{name}: {len(out)} rows from {len(keys)} exported")
    for key, ex in zip(keys, out):
        ref = refs[key]
        d = id_drift(expected(ref)[0], list(ex["input_ids"]))
        drift_rows += d > 0
        drift_tokens += d
        fails += check_masked_text(f"{name} {key[0]}#{key[1]}", decode, ref, list(ex["input_ids"]), list(ex["labels"]))
    return fails, {"rows": len(out), "rows_with_other_ids": drift_rows, "tokens_differing": drift_tokens}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--export", required=True)
    ap.add_argument("--model", required=True, help="the default model in the Hugging Face layout")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--trainers", default="trl,llamafactory,axolotl")
    ap.add_argument("--report")
    args = ap.parse_args()
    from datasets import load_dataset
    from transformers import AutoTokenizer

    refs_all = trajectories(args.dataset)
    export_file = os.path.join(args.export, "sft.parquet")
    rows = load_dataset("parquet", data_files=export_file, split="train")
    refs = {k: refs_all[k] for k in zip(rows["problem_id"], rows["sample_index"])}
    tok = AutoTokenizer.from_pretrained(args.model)

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    fails = []
    report = {"rows": len(rows), "tool_outputs": sum(s["kind"] == "output" for r in refs.values() for s in r["segments"])}
    # The export's own columns against the reference, and its text against its ids.
    for i, key in enumerate(zip(rows["problem_id"], rows["sample_index"])):
        e = expected(refs[key])
        r = rows[i]
        fails += check_sequence(f"export {key[0]}#{key[1]}", e[0], e[1], e[2], r["input_ids"], r["labels"])
        if decode(r["input_ids"]) != r["text"]:
            fails.append(f"export {key[0]}#{key[1]}: its ids do not decode to its text")
        fails += check_masked_text(f"export {key[0]}#{key[1]}", decode, refs[key], r["input_ids"], r["labels"])
    trainers = set(args.trainers.split(","))
    with tempfile.TemporaryDirectory() as work:
        if "trl" in trainers:
            f, report["trl"] = run_trl(export_file, args.model, refs, args.steps, work)
            fails += f
        if "llamafactory" in trainers:
            lf_tok, out = run_llamafactory(args.export, args.model, refs, work)
            f, report["llamafactory"] = compare_loader(
                "llamafactory", rows, out, refs,
                lambda ids: lf_tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
            fails += f
        if "axolotl" in trainers:
            f, report["axolotl"] = compare_loader("axolotl", rows, run_axolotl(export_file, tok), refs, decode)
            fails += f
    report["failures"] = fails
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for f in fails:
        print("FAIL", f, file=sys.stderr)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
