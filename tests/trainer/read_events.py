"""Reads a TensorBoard event file with PyPI tensorboard's own readers.

usage: read_events.py EVENTS_FILE
Prints one JSON object: the file_version of the first record, every scalar
EventAccumulator (what TensorBoard's UI loads) finds as [tag, step, value,
wall_time], and the records the checksum-checking record reader accepted
before it stopped ("error" names the exception if it stopped on one).
"""
import json
import math
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New


def raw_records(path):
    reader = PyRecordReader_New(path.encode())
    records, error = [], None
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            break
        except Exception as e:  # DataLossError on a bad checksum or a cut record
            error = type(e).__name__
            break
        records.append(event_pb2.Event.FromString(reader.record()))
    return records, error


def main():
    path = sys.argv[1]
    records, error = raw_records(path)
    out = {"records": len(records), "error": error,
           "file_version": records[0].file_version if records else None, "scalars": []}
    if error is None:
        acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        for tag in sorted(acc.Tags()["scalars"]):
            for s in acc.Scalars(tag):
                v = s.value
                out["scalars"].append([tag, s.step, v if math.isfinite(v) else str(v), s.wall_time])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
