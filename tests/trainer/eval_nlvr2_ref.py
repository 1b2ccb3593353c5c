"""A restatement of UNITER's scripts/eval_nlvr2.py (lil-lab's NLVR2 evaluation).

usage: eval_nlvr2_ref.py RESULTS_CSV ANNOTATIONS_JSONL
Prints what that script prints for a complete results file.
"""
import json
import sys


def main():
    predictions = {}
    for line in open(sys.argv[1]).readlines():
        if line.strip():
            fields = line.strip().split(",")
            predictions[fields[0]] = fields[1]
    examples = [json.loads(line) for line in open(sys.argv[2]).readlines() if line.strip()]
    correct = 0.0
    groups = {}
    for ex in examples:
        parts = ex["identifier"].split("-")
        parts[2] = ""
        key = "-".join(parts)
        groups.setdefault(key, True)
        if predictions[ex["identifier"]].lower() == ex["label"].lower():
            correct += 1.0
        else:
            groups[key] = False
    consistent = 0.0
    for ok in groups.values():
        if ok:
            consistent += 1
    print("accuracy=" + str(correct / len(examples)))
    print("consistency=" + str(consistent / len(groups)))


if __name__ == "__main__":
    main()
