"""Independent restatement of the official VQA accuracy (GT-Vision-Lab/VQA
PythonEvaluationTools/vqaEvaluation/vqaEval.py, VQAEval.evaluate), written
for the test from the published algorithm; the contraction table is cut to
the entries the test's answers use.

usage: vqa_eval_ref.py results.json annotations.json
prints accuracy=, overall=, questions= lines as `uniter eval vqa` does.
"""
import json
import re
import sys

CONTRACTIONS = {"dont": "don't", "isnt": "isn't", "cant": "can't", "whats": "what's"}
MANUAL_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
              "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ["a", "an", "the"]
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]


def process_punctuation(in_text):
    out = in_text
    for p in PUNCT:
        if (p + " " in in_text or " " + p in in_text) or (re.search(COMMA_STRIP, in_text) is not None):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # The official call passes re.UNICODE (32) as re.sub's count.
    return PERIOD_STRIP.sub("", out, re.UNICODE)


def process_digit_article(in_text):
    out = []
    for word in in_text.lower().split():
        word = MANUAL_MAP.setdefault(word, word)
        if word not in ARTICLES:
            out.append(word)
    out = [CONTRACTIONS.get(w, w) for w in out]
    return " ".join(out)


def main():
    res = {r["question_id"]: r for r in json.load(open(sys.argv[1]))}
    anns = json.load(open(sys.argv[2]))["annotations"]
    gts = {a["question_id"]: a for a in anns}
    ques_ids = [a["question_id"] for a in anns]
    assert set(res) == set(ques_ids), "results do not cover the annotations"
    acc_qa = []
    for qid in ques_ids:
        res_ans = res[qid]["answer"].replace("\n", " ").replace("\t", " ").strip()
        res_ans = process_digit_article(process_punctuation(res_ans))
        gt_answers = [a["answer"] for a in gts[qid]["answers"]]
        if len(set(gt_answers)) > 1:
            for a in gts[qid]["answers"]:
                a["answer"] = process_punctuation(a["answer"])
        gt_acc = []
        for datum in gts[qid]["answers"]:
            others = [item for item in gts[qid]["answers"] if item != datum]
            matching = [item for item in others if item["answer"] == res_ans]
            gt_acc.append(min(1, float(len(matching)) / 3))
        acc_qa.append(float(sum(gt_acc)) / len(gt_acc))
    print("accuracy=%s" % (float(sum(acc_qa)) / len(acc_qa)))
    print("overall=%s" % round(100 * float(sum(acc_qa)) / len(acc_qa), 2))
    print("questions=%d" % len(acc_qa))


if __name__ == "__main__":
    main()
