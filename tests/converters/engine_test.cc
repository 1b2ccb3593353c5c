// The shared engine: rejects, --strict, --missing-imgs, existing dbs,
// --force / --resume, identical output whatever the thread count, the CLI.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "converters/convert.h"
#include "converters/internal/json_writer.h"
#include "featdb/txt_db.h"
#include "tests/converters/convert_test_util.h"

namespace uniter::converters {
namespace {

namespace fs = std::filesystem;
using testutil::Fixtures;
using testutil::Options;
using testutil::PythonCheck;
using testutil::Toker;

std::string Nlvr2Dev() { return testing::SharedDataDir() + "/nlvr2/dev.json"; }

#define REQUIRE_NLVR2_DEV() \
  UNITER_REQUIRE_REFERENCE(fs::exists(Nlvr2Dev())) << "data set " << Nlvr2Dev() << " is missing (set UNITER_TEST_DATA)"


std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(Engine, BadRecordsGoToRejectsWithFileLineAndReason) {
  const std::string ann = Fixtures() + "/nlvr2_bad.json";
  const std::string out = testing::TempDir("bad");
  fs::remove_all(out);
  const ConvertSummary s = RunConvert(Options("nlvr2", {ann}, out), Toker());
  EXPECT_EQ(s.examples, 3u);  // lines 1, 6, 8
  EXPECT_EQ(s.rejects, 5u);
  const auto rejects = ReadJsonLines(out + "/rejects.jsonl");
  ASSERT_EQ(rejects.size(), 5u);
  const std::vector<std::pair<int, std::string>> want = {{2, "malformed JSON"},
                                                         {3, "missing field 'sentence'"},
                                                         {4, "unknown label 'maybe'"},
                                                         {7, "duplicate key"},
                                                         {9, "longer than 511 bytes"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(rejects[i]["file"], ann);
    EXPECT_EQ(rejects[i]["line"], want[i].first);
    EXPECT_NE(rejects[i]["reason"].get<std::string>().find(want[i].second), std::string::npos) << rejects[i];
  }
  featdb::TxtDbReader db(out);
  EXPECT_EQ(db.Keys(), (std::vector<std::string>{"dev-1-0-0", "dev-1-4-1", "dev-1-5-0"}));
  EXPECT_TRUE(db.Get("dev-1-4-1")->at("target").is_nil());  // unlabeled → None, like UNITER
  EXPECT_EQ(db.Get("dev-1-0-0")->at("sentence").as_str(), "There are two dogs.");  // the first one wins
}

TEST(Engine, StrictStopsAtTheFirstBadRecordNamingIt) {
  const std::string ann = Fixtures() + "/nlvr2_bad.json";
  const std::string out = testing::TempDir("strict");
  fs::remove_all(out);
  ConvertOptions o = Options("nlvr2", {ann}, out);
  o.strict = true;
  try {
    RunConvert(o, Toker());
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_EQ(e.where(), ann + ":2");
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
  }
}

TEST(Engine, MissingImagesDropTheirExamples) {
  REQUIRE_NLVR2_DEV();
  const std::string out = testing::TempDir("missing");
  fs::remove_all(out);
  const std::string list = testing::TempDir("missing_list") + "/missing.json";
  testing::WriteFile(list, R"(["nlvr2_dev-850-0-img1.npz", "nlvr2_dev-0-0-img0.npz"])");
  ConvertOptions o = Options("nlvr2", {Nlvr2Dev()}, out);
  o.missing_imgs = list;
  const ConvertSummary s = RunConvert(o, Toker());
  // Count independently: lines whose identifier starts with the two pairs.
  int want = 0, total = 0;
  std::ifstream in(Nlvr2Dev());
  std::string line;
  while (std::getline(in, line)) {
    const std::string id = nlohmann::json::parse(line)["identifier"];
    ++total;
    if (id.rfind("dev-850-0-", 0) == 0 || id.rfind("dev-0-0-", 0) == 0) ++want;
  }
  ASSERT_GT(want, 0);
  EXPECT_EQ(s.missing_images, static_cast<uint64_t>(want));
  EXPECT_EQ(s.examples, static_cast<uint64_t>(total - want));
  featdb::TxtDbReader db(out);
  EXPECT_FALSE(db.Get("dev-850-0-0"));
  EXPECT_FALSE(featdb::ReadJsonFile(out + "/id2len.json").contains("dev-850-0-0"));
}

TEST(Engine, RefusesAnExistingDbUnlessForced) {
  const std::string out = testing::TempDir("exists");
  fs::remove_all(out);
  const std::string ann = Fixtures() + "/nlvr2_bad.json";
  RunConvert(Options("nlvr2", {ann}, out), Toker());
  EXPECT_THROW(RunConvert(Options("nlvr2", {ann}, out), Toker()), UsageError);
  ConvertOptions o = Options("nlvr2", {Fixtures() + "/ve_flickr30k_id.jsonl"}, out);
  o.task = "ve";
  o.force = true;
  RunConvert(o, Toker());
  featdb::TxtDbReader db(out);
  EXPECT_EQ(db.Keys(), std::vector<std::string>{"1000092795.jpg#0r1n"});
}

TEST(Engine, ResumeAddsWhatAnInterruptedRunLeftOut) {
  REQUIRE_NLVR2_DEV();
  UNITER_REQUIRE_REFERENCES();
  // The "interrupted" run saw only the first 1000 lines.
  const std::string part = testing::TempDir("resume_in") + "/dev_part.json";
  {
    std::ifstream in(Nlvr2Dev());
    std::ofstream o(part);
    std::string line;
    for (int i = 0; i < 1000 && std::getline(in, line); ++i) o << line << "\n";
  }
  const std::string out = testing::TempDir("resume");
  fs::remove_all(out);
  RunConvert(Options("nlvr2", {part}, out), Toker());
  ConvertOptions o = Options("nlvr2", {Nlvr2Dev()}, out);
  o.resume = true;
  const ConvertSummary s = RunConvert(o, Toker());
  EXPECT_EQ(s.resumed, 1000u);
  EXPECT_EQ(s.written + s.resumed, s.examples);
  PythonCheck("nlvr2", out, {Nlvr2Dev()});
}

// Every byte of every record and sidecar, read with featdb's reader.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> snap;
  featdb::TxtDbReader db(dir);
  for (const auto& k : db.Keys()) snap["rec:" + k] = *db.GetRaw(k);
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json" && e.path().filename() != "meta.json")
      snap[e.path().filename().string()] = testing::ReadFile(e.path().string());
  return snap;
}

TEST(Engine, OutputIsIdenticalWhateverTheThreadCount) {
  REQUIRE_NLVR2_DEV();
  std::vector<std::map<std::string, std::string>> snaps;
  for (int threads : {1, 2, 4}) {
    const std::string out = testing::TempDir("threads" + std::to_string(threads));
    fs::remove_all(out);
    ConvertOptions o = Options("nlvr2", {Nlvr2Dev(), Fixtures() + "/nlvr2_bad.json"}, out);
    o.threads = threads;
    RunConvert(o, Toker());
    snaps.push_back(Snapshot(out));
  }
  EXPECT_GT(snaps[0].size(), 6900u);
  EXPECT_TRUE(snaps[0] == snaps[1]);
  EXPECT_TRUE(snaps[0] == snaps[2]);
}

TEST(Engine, MetaHasWhatUniterDatasetsRead) {
  const std::string out = testing::TempDir("meta");
  fs::remove_all(out);
  RunConvert(Options("nlvr2", {Fixtures() + "/nlvr2_bad.json"}, out), Toker());
  const auto meta = featdb::ReadJsonFile(out + "/meta.json");
  for (const char* k : {"bert", "toker", "tokenizer", "UNK", "CLS", "SEP", "MASK", "v_range", "do_lower_case",
                        "task", "annotations", "output"})
    EXPECT_TRUE(meta.contains(k)) << k;
  // bert-base-cased, as pytorch-pretrained-bert numbers it.
  EXPECT_EQ(meta["bert"], "bert-base-cased");
  EXPECT_EQ(meta["CLS"], 101);
  EXPECT_EQ(meta["SEP"], 102);
  EXPECT_EQ(meta["MASK"], 103);
  EXPECT_EQ(meta["v_range"], nlohmann::json::array({106, 28996}));
  EXPECT_EQ(meta["do_lower_case"], false);
}

TEST(Cli, ConvertListsEveryTaskAndDocumentsIt) {
  const auto r = testing::Run(testing::Quote(testing::UniterBinary()) + " convert --help 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  for (const char* t : {"nlvr2", "vqa", "ve", "itm", "refcoco", "vcr", "captions"})
    EXPECT_NE(r.out.find(t), std::string::npos) << t;
  const auto h = testing::Run(testing::Quote(testing::UniterBinary()) + " convert vqa --help 2>&1");
  EXPECT_NE(h.out.find("--ans2label"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("Key = str(question_id)"), std::string::npos) << h.out;
}

TEST(Cli, ConvertsAndRefusesToOverwrite) {
  const std::string out = testing::TempDir("cli");
  fs::remove_all(out);
  const std::string cmd = testing::Quote(testing::UniterBinary()) + " convert nlvr2 -q --ann " +
                          testing::Quote(Fixtures() + "/nlvr2_bad.json") + " --vocab " +
                          testing::Quote(testutil::CasedVocab()) + " -o " + testing::Quote(out) + " 2>&1";
  const auto r = testing::Run(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("3 examples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("5 rejects"), std::string::npos) << r.out;
  const auto again = testing::Run(cmd);
  EXPECT_EQ(again.exit_code, 2) << again.out;
  EXPECT_NE(again.out.find(out), std::string::npos) << again.out;
}

}  // namespace
}  // namespace uniter::converters

namespace uniter::converters {
namespace {

TEST(JsonWriter, WritesSidecarsAsPythonJsonDumpDoes) {
  const std::vector<std::string> keys = {"plain", "quo\"te", "back\\slash", "tab\there\nnl", std::string("ctrl\x01\x1f", 6),
                                         "del\x7f", "caf\xc3\xa9", "emoji \xf0\x9f\x98\x80", "\xe2\x98\x83"};
  JsonObjectWriter w;
  nlohmann::json input = nlohmann::json::array();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i % 3 == 0) w.Add(keys[i], static_cast<int64_t>(i) - 3);
    else if (i % 3 == 1) w.Add(keys[i], keys[(i + 1) % keys.size()]);
    else w.Add(keys[i], std::vector<std::string>{keys[0], keys[i]});
    input.push_back(keys[i]);
  }
  const std::string got = w.Finish();
  // The same dict dumped by Python's json (insertion order, ", "/": ", ensure_ascii).
  const std::string in_path = testing::TempDir("jsonwriter") + "/keys.json";
  testing::WriteFile(in_path, input.dump());
  const auto r = testing::Run(
      testing::Quote(testing::Python()) + " -c " +
      testing::Quote("import json,sys; k=json.load(open(sys.argv[1])); d={}\n"
                     "for i,x in enumerate(k):\n"
                     "  d[x] = i-3 if i%3==0 else (k[(i+1)%len(k)] if i%3==1 else [k[0], x])\n"
                     "sys.stdout.write(json.dumps(d))") +
      " " + testing::Quote(in_path));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(got, r.out);
  EXPECT_EQ(JsonObjectWriter().Finish(), "{}");
}

}  // namespace
}  // namespace uniter::converters
