#include "pipeline/demo.h"

#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <set>
#include <sstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "extractor/synthetic_model.h"

namespace uniter::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// splitmix64: the same numbers on every platform (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  int Below(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t s_;
};

const std::array<const char*, 3> kColors = {"red", "green", "blue"};
const std::array<cv::Scalar, 3> kBgr = {cv::Scalar(40, 40, 220), cv::Scalar(40, 180, 40), cv::Scalar(220, 60, 40)};
// Statements are text only: more of them per pair cost no extraction time.
constexpr int kStatementsPerPair = 6;
const std::array<const char*, 3> kShapes = {"circle", "square", "triangle"};

struct Picture {
  int color, shape;
};

void Draw(const Picture& p, int size, Rng& rng, const std::string& path) {
  cv::Mat img(size, size, CV_8UC3, cv::Scalar(235, 235, 235));
  const int r = size * (30 + rng.Below(10)) / 100;  // the shape covers most of the image
  const cv::Point c(size / 2 + rng.Below(size / 8) - size / 16, size / 2 + rng.Below(size / 8) - size / 16);
  if (p.shape == 0) {
    cv::circle(img, c, r, kBgr[p.color], cv::FILLED, cv::LINE_AA);
  } else if (p.shape == 1) {
    cv::rectangle(img, c - cv::Point(r, r), c + cv::Point(r, r), kBgr[p.color], cv::FILLED);
  } else {
    std::vector<cv::Point> tri = {c + cv::Point(0, -r), c + cv::Point(-r, r), c + cv::Point(r, r)};
    cv::fillConvexPoly(img, tri, kBgr[p.color], cv::LINE_AA);
  }
  if (!cv::imwrite(path, img)) throw IoError("cannot write image", path);
}

// A statement about the colours of (left, right) that is true or false as
// asked (half and half, so the majority guess scores 50%). Colour is what the
// narrow random detector's features keep best (a linear probe on them tells
// the three colours apart); shapes vary as a distraction.
std::string Statement(const Picture& left, const Picture& right, bool want, Rng& rng) {
  for (;;) {
    const int kind = rng.Below(3);
    const int c = rng.Below(3);
    if (kind == 2) {  // both images; true only when both show c
      if ((left.color == c && right.color == c) == want) return std::string("both images show a ") + kColors[c] + " shape";
      continue;
    }
    const Picture& p = kind == 0 ? left : right;
    if ((p.color == c) == want)
      return std::string("the ") + (kind == 0 ? "left" : "right") + " image shows a " + kColors[c] + " shape";
  }
}

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  WriteFileAtomic(path, text);
}

// NLVR2: 6 statements about each image pair. Returns the annotation file.
std::string Nlvr2Split(const fs::path& dir, const std::string& split, int pairs, int size, Rng& rng,
                       std::set<std::string>* words) {
  const fs::path images = dir / "images" / split;
  std::string lines;
  for (int i = 0; i < pairs; ++i) {
    const std::string pair = split + "-" + std::to_string(i) + "-0";
    const Picture left{rng.Below(3), rng.Below(3)}, right{rng.Below(3), rng.Below(3)};
    Draw(left, size, rng, (images / (pair + "-img0.png")).string());
    Draw(right, size, rng, (images / (pair + "-img1.png")).string());
    for (int n = 0; n < kStatementsPerPair; ++n) {
      const bool truth = rng.Below(2) == 0;
      const std::string sentence = Statement(left, right, truth, rng);
      std::istringstream in(sentence);
      for (std::string w; in >> w;) words->insert(w);
      lines += json{{"identifier", pair + "-" + std::to_string(n)}, {"sentence", sentence},
                    {"label", truth ? "True" : "False"}}.dump() + "\n";
    }
  }
  const std::string path = (dir / "nlvr2" / (split + ".json")).string();
  WriteText(path, lines);
  return path;
}

std::string Pad12(int64_t v) {
  std::string s = std::to_string(v);
  return std::string(12 - s.size(), '0') + s;
}

// VQA v2: three questions per COCO-named picture; ten answers each, two of
// them another (so the soft scores and vqaEval's leave-one-out matter).
// Returns {questions file, annotations file}.
std::pair<std::string, std::string> VqaSplit(const fs::path& dir, const std::string& split, int images_n, int size,
                                             Rng& rng, std::set<std::string>* words) {
  const std::string coco = split == "train" ? "train2014" : "val2014";
  json questions = json::array(), annotations = json::array();
  const int64_t base = split == "train" ? 1 : 100000;
  for (int i = 0; i < images_n; ++i) {
    const int64_t image_id = base + i;
    const Picture p{rng.Below(3), rng.Below(3)};
    Draw(p, size, rng, (dir / "images" / split / ("COCO_" + coco + "_" + Pad12(image_id) + ".png")).string());
    const int asked = rng.Below(3);
    const std::vector<std::pair<std::string, std::string>> qa = {
        {"what color is the shape", kColors[p.color]},
        {"what shape is it", kShapes[p.shape]},
        {std::string("is the shape ") + kColors[asked], p.color == asked ? "yes" : "no"}};
    for (size_t q = 0; q < qa.size(); ++q) {
      const int64_t qid = image_id * 10 + static_cast<int64_t>(q);
      std::istringstream in(qa[q].first);
      for (std::string w; in >> w;) words->insert(w);
      json answers = json::array();
      for (int h = 0; h < 10; ++h) {
        std::string a = qa[q].second;
        if (h >= 8) a = q == 0 ? kColors[rng.Below(3)] : q == 1 ? kShapes[rng.Below(3)] : (rng.Below(2) ? "yes" : "no");
        answers.push_back({{"answer", a}, {"answer_confidence", "yes"}, {"answer_id", h + 1}});
      }
      questions.push_back({{"image_id", image_id}, {"question", qa[q].first + "?"}, {"question_id", qid}});
      annotations.push_back({{"question_id", qid}, {"image_id", image_id}, {"question_type", "what"},
                             {"answer_type", q == 2 ? "yes/no" : "other"}, {"multiple_choice_answer", qa[q].second},
                             {"answers", answers}});
    }
  }
  const std::string qpath = (dir / "vqa" / ("v2_OpenEnded_mscoco_" + coco + "_questions.json")).string();
  const std::string apath = (dir / "vqa" / ("v2_mscoco_" + coco + "_annotations.json")).string();
  WriteText(qpath, json{{"questions", questions}}.dump() + "\n");
  WriteText(apath, json{{"annotations", annotations}}.dump() + "\n");
  return {qpath, apath};
}

// SNLI-VE: three hypotheses per Flickr-named picture, one of each label.
std::string VeSplit(const fs::path& dir, const std::string& split, int images_n, int size, Rng& rng,
                    std::set<std::string>* words) {
  static const std::array<const char*, 3> kUnknowable = {"old", "famous", "expensive"};
  std::string lines;
  const int64_t base = split == "train" ? 1000 : 900000;
  for (int i = 0; i < images_n; ++i) {
    const int64_t flickr = base + i;
    const Picture p{rng.Below(3), rng.Below(3)};
    Draw(p, size, rng, (dir / "images" / split / (std::to_string(flickr) + ".jpg")).string());
    const int other = (p.color + 1 + rng.Below(2)) % 3;
    const std::vector<std::pair<std::string, std::string>> hyps = {
        {std::string("the image shows a ") + kColors[p.color] + " shape", "entailment"},
        {std::string("the image shows a ") + kColors[other] + " shape", "contradiction"},
        {std::string("the ") + kShapes[p.shape] + " is " + kUnknowable[rng.Below(3)], "neutral"}};
    for (size_t h = 0; h < hyps.size(); ++h) {
      std::istringstream in(hyps[h].first);
      for (std::string w; in >> w;) words->insert(w);
      lines += json{{"pairID", std::to_string(flickr) + "#" + std::to_string(h)},
                    {"Flikr30kID", std::to_string(flickr) + ".jpg"}, {"sentence2", hyps[h].first},
                    {"gold_label", hyps[h].second}}.dump() + "\n";
    }
  }
  const std::string path = (dir / "snli_ve" / ("snli_ve_" + split + ".jsonl")).string();
  WriteText(path, lines);
  return path;
}

}  // namespace

std::string WriteDemoInputs(const DemoOptions& o) {
  const fs::path dir = fs::absolute(o.dir);
  Rng rng(o.seed);
  std::set<std::string> words;
  if (o.task != "nlvr2" && o.task != "vqa" && o.task != "ve")
    throw UsageError("demo task '" + o.task + "': nlvr2, vqa or ve");
  json annotations, questions;  // paths relative to dir, as the rest of pipeline.json
  for (const std::string split : {"train", "dev"}) {
    const int n = split == "train" ? o.train_pairs : o.dev_pairs;
    fs::create_directories(dir / "images" / split);
    if (o.task == "vqa") {
      const auto [q, a] = VqaSplit(dir, split, 2 * n, o.image_size, rng, &words);
      questions[split] = fs::relative(q, dir).string();
      annotations[split] = fs::relative(a, dir).string();
    } else if (o.task == "ve") {
      annotations[split] = fs::relative(VeSplit(dir, split, 2 * n, o.image_size, rng, &words), dir).string();
    } else {
      annotations[split] = fs::relative(Nlvr2Split(dir, split, n, o.image_size, rng, &words), dir).string();
    }
  }
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const auto& w : words) vocab += w + "\n";
  WriteText((dir / "vocab-uncased.txt").string(), vocab);

  extractor::SyntheticModelOptions so;
  so.out_caffemodel = (dir / "detector" / "narrow.caffemodel").string();
  so.out_prototxt = (dir / "detector" / "narrow.prototxt").string();
  so.channel_divisor = o.channel_divisor;
  so.res4_blocks = 2;
  so.seed = o.seed;
  fs::create_directories(dir / "detector");
  extractor::WriteSyntheticModel(so);

  const json model = {{"vocab_size", 5 + words.size()}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 2}, {"intermediate_size", 128}, {"hidden_act", "gelu"},
                      {"hidden_dropout_prob", 0.1}, {"attention_probs_dropout_prob", 0.1},
                      {"max_position_embeddings", 64}, {"type_vocab_size", 2}, {"initializer_range", 0.02},
                      {"img_dim", 2048 / o.channel_divisor}};
  WriteText((dir / "uniter-tiny.json").string(), model.dump(2) + "\n");
  json train = {{"model_config", "uniter-tiny.json"}, {"checkpoint", ""}, {"model", "paired-attn"},
                      {"use_img_type", true}, {"max_txt_len", 40}, {"conf_th", 0.2}, {"max_bb", 10},
                      {"min_bb", 10}, {"num_bb", 10}, {"train_batch_size", 1200}, {"val_batch_size", 4000},
                      {"gradient_accumulation_steps", 1}, {"learning_rate", 1e-3}, {"valid_steps", 100},
                      {"num_train_steps", o.train_steps}, {"optim", "adamw"}, {"betas", {0.9, 0.98}},
                      {"dropout", 0.1}, {"weight_decay", 0.01}, {"grad_norm", 2.0}, {"warmup_steps", o.train_steps / 10},
                      {"seed", 42}, {"fp16", false}, {"n_workers", 1}, {"pin_mem", false}};
  if (o.task != "nlvr2") train.erase("model");  // NLVR2's head option
  // model_config in a train config is relative to the working directory (UNITER's
  // argparse); the demo's is absolute.
  json train_abs = train;
  train_abs["model_config"] = (dir / "uniter-tiny.json").string();
  const std::string train_name = "train-" + o.task + "-tiny.json";
  WriteText((dir / train_name).string(), train_abs.dump(2) + "\n");
  json pipeline = {
      {"task", o.task},
      {"annotations", annotations},
      {"images", {{"train", "images/train"}, {"dev", "images/dev"}}},
      {"vocab", "vocab-uncased.txt"},
      {"detector_prototxt", "detector/narrow.prototxt"},
      {"detector_weights", "detector/narrow.caffemodel"},
      {"train_config", train_name},
      {"output", "out"},
      {"extract_target_size", o.image_size},
      {"extract_max_size", o.image_size},
      {"extract_proposals", 30}};
  if (o.task == "vqa") pipeline["questions"] = questions;
  const std::string path = (dir / "pipeline.json").string();
  WriteText(path, pipeline.dump(2) + "\n");
  return path;
}

}  // namespace uniter::pipeline
