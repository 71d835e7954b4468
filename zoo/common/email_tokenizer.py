"""Hashed-word email tokenizer of the `spam-transformer` task.

Twin of zoo/datasets/email-tokenizer.ts (read the specification there); both must give
identical ids for every email. Works on raw bytes only, no text decoding.
"""
import re

import numpy as np

BUCKETS = 8192
MAX_LENGTH = 128
PAD_ID = 0
CLS_ID = 1
VOCAB_SIZE = BUCKETS + 2

_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_TOKEN = re.compile(rb"[a-z0-9$!]+")


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def email_text(raw: bytes) -> bytes:
    """Subject value (with folded continuation lines) + LF + body; other headers dropped."""
    subject = []
    in_subject = False
    body_start = len(raw)
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        nxt = len(raw) if end < 0 else end + 1
        if end < 0:
            end = len(raw)
        line = raw[pos:end]
        if line == b"" or line == b"\r":
            body_start = nxt
            break
        if in_subject and line[:1] in (b" ", b"\t"):
            subject.append(line)
        else:
            in_subject = False
            if not subject and len(line) >= 8 and line[:8].translate(_LOWER) == b"subject:":
                subject.append(line[8:])
                in_subject = True
        pos = nxt
    return b"\n".join(subject) + b"\n" + raw[body_start:]


_cache: dict = {}


def token_ids_of_text(text: bytes, limit=None):
    ids = []
    for m in _TOKEN.finditer(text.translate(_LOWER)):
        if limit is not None and len(ids) >= limit:
            break
        tok = m.group(0)
        i = _cache.get(tok)
        if i is None:
            i = 2 + fnv1a32(tok) % BUCKETS
            if len(_cache) < 1_000_000:
                _cache[tok] = i
        ids.append(i)
    return ids


def tokenize_email(raw: bytes) -> np.ndarray:
    """The MAX_LENGTH int64 model input ids of one raw message: CLS, tokens, PAD."""
    out = np.zeros(MAX_LENGTH, dtype=np.int64)
    out[0] = CLS_ID
    ids = token_ids_of_text(email_text(raw), MAX_LENGTH - 1)
    out[1:1 + len(ids)] = ids
    return out
