"""SFT with TRL on start's export: the loop's START-0 and START.

Trains a Hugging Face model on one or more `startctl export` outputs, from their pre-tokenised
columns (`input_ids`, `labels`: the exact generated sequence, tool output out of the loss), and
saves the result with the base model's tokenizer and chat template as a Hugging Face directory.

    train.py --base HF_DIR --data EXPORT_DIR [--data EXPORT_DIR ...] --out HF_DIR [--epochs N] [--lr LR]
"""
import argparse
import json
import os
import shutil

import torch
from datasets import concatenate_datasets, load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    parts = [load_dataset("parquet", data_files=os.path.join(d, "sft.parquet"), split="train") for d in args.data]
    ds = concatenate_datasets(parts).select_columns(["input_ids", "labels"])
    if len(ds) == 0:
        raise SystemExit(f"train.py: no rows in {args.data}")
    tok = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    config = SFTConfig(
        output_dir=args.out + ".run", num_train_epochs=args.epochs, per_device_train_batch_size=args.batch,
        learning_rate=args.lr, lr_scheduler_type="cosine", logging_steps=1,
        save_strategy="no", report_to=[], max_length=None, use_cpu=True, seed=args.seed,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    trainer.save_model(args.out)
    tok.save_pretrained(args.out)
    for name in ("chat_template.jinja", "generation_config.json"):
        if os.path.exists(os.path.join(args.base, name)) and not os.path.exists(os.path.join(args.out, name)):
            shutil.copy(os.path.join(args.base, name), args.out)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {"rows": len(ds), "steps": result.global_step, "first_loss": losses[0], "last_loss": losses[-1],
               "train_runtime_s": round(result.metrics["train_runtime"], 1)}
    with open(os.path.join(args.out, "start-sft.json"), "w") as f:
        json.dump(summary, f)
    shutil.rmtree(args.out + ".run", ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
