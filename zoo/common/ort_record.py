"""The record written beside a zoo file another framework's quantizer made (ort_dynamic.py,
ort_qoperator.py): what made it, from which model, and the file's own sha256 and size."""
import hashlib
import json
import os


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_record(record_path, task, producer, options, src, out, **extra):
    """Writes (and prints) the record as JSON: task, producer, options, extra fields, then the
    source model's sha256 and the file's sha256 and size."""
    record = {
        "task": task,
        "producer": producer,
        "options": options,
        **extra,
        "source_sha256": sha256(src),
        "sha256": sha256(out),
        "bytes": os.path.getsize(out),
    }
    with open(record_path, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(json.dumps(record))
