// Each converter on real data where ../shared/data has it, else on fixtures in
// the official schemas; the dbs are read back in Python the way UNITER's
// datasets read them and compared with records rebuilt by check_txtdb.py
// (UNITER's prepro logic + pytorch-pretrained-bert 0.6.2).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "converters/convert.h"
#include "featdb/txt_db.h"
#include "tests/converters/convert_test_util.h"

namespace uniter::converters {
namespace {

namespace fs = std::filesystem;
using testutil::Fixtures;
using testutil::Options;
using testutil::PythonCheck;
using testutil::Toker;

std::string Shared(const std::string& p) { return testing::SharedDataDir() + "/" + p; }

void RequireShared(const std::string& p) {
  UNITER_REQUIRE_REFERENCE(fs::exists(Shared(p))) << "data set " << Shared(p) << " is missing (set UNITER_TEST_DATA)";
}

TEST(Nlvr2, RealDevAndTest1MatchUniterPrepro) {
  UNITER_REQUIRE_REFERENCES();
  for (const char* split : {"dev", "test1"}) {
    const std::string ann = Shared(std::string("nlvr2/") + split + ".json");
    UNITER_REQUIRE_REFERENCE(fs::exists(ann)) << "data set " << ann << " is missing (set UNITER_TEST_DATA)";
    const std::string out = testing::TempDir(std::string("nlvr2_") + split);
    fs::remove_all(out);
    const ConvertSummary s = RunConvert(Options("nlvr2", {ann}, out), Toker());
    EXPECT_EQ(s.rejects, 0u);
    EXPECT_GT(s.examples, 6900u);
    EXPECT_EQ(PythonCheck("nlvr2", out, {ann}), "OK " + std::to_string(s.examples) + "\n");
  }
}

TEST(Vqa, QuestionsAndAnnotationsWithUniterAnswerTable) {
  UNITER_REQUIRE_REFERENCES();
  RequireShared("vqa/ans2label.json");
  const std::string q = Fixtures() + "/v2_OpenEnded_mscoco_val2014_questions.json";
  const std::string a = Fixtures() + "/v2_mscoco_val2014_annotations.json";
  const std::string out = testing::TempDir("vqa");
  fs::remove_all(out);
  const ConvertSummary s =
      RunConvert(Options("vqa", {q, a}, out, {{"ans2label", {Shared("vqa/ans2label.json")}}}), Toker());
  EXPECT_EQ(s.examples, 9u);
  PythonCheck("vqa", out, {q, a}, {"ans2label=" + Shared("vqa/ans2label.json"), "image-split=val2014"});
  // The answer table travels with the db.
  EXPECT_EQ(featdb::ReadJsonFile(out + "/ans2label.json"), featdb::ReadJsonFile(Shared("vqa/ans2label.json")));
  // Soft scores really are there (not all targets empty).
  featdb::TxtDbReader db(out);
  const auto ex = db.Get("262148001");
  ASSERT_TRUE(ex);
  EXPECT_FALSE(ex->at("target").at("labels").as_array().empty());
}

TEST(Vqa, TestSplitHasNoTargetAndImageSplitComesFromTheFileName) {
  UNITER_REQUIRE_REFERENCES();
  const std::string q = Fixtures() + "/v2_OpenEnded_mscoco_test2015_questions.json";
  const std::string out = testing::TempDir("vqa_test");
  fs::remove_all(out);
  RunConvert(Options("vqa", {q}, out), Toker());
  PythonCheck("vqa", out, {q}, {"image-split=test2015"});
  featdb::TxtDbReader db(out);
  EXPECT_EQ(db.Get(db.Keys().at(0))->Find("target"), nullptr);
}

TEST(Vqa, BuildsTheAnswerTableFromTrainAnnotations) {
  const std::string q = Fixtures() + "/v2_OpenEnded_mscoco_val2014_questions.json";
  const std::string a = Fixtures() + "/v2_mscoco_val2014_annotations.json";
  const std::string out = testing::TempDir("vqa_built");
  fs::remove_all(out);
  RunConvert(Options("vqa", {q, a}, out, {{"min-answer-count", {"1"}}}), Toker());
  // Every normalised multiple_choice_answer (first-seen order), as UNITER's
  // filter_answers/create_ans2label with min 1; normalisation is checked
  // against the official code in vqa_answer_test.
  const auto table = featdb::ReadJsonFile(out + "/ans2label.json");
  EXPECT_EQ(table.size(), 9u);
  EXPECT_EQ(table.at("yes"), 0);
  EXPECT_EQ(table.at("man"), 8);
}

TEST(Vqa, VisualGenomeQuestionAnswers) {
  UNITER_REQUIRE_REFERENCES();
  RequireShared("vqa/ans2label.json");
  const std::string qa = Fixtures() + "/vg_question_answers.json";
  const std::string out = testing::TempDir("vqa_vg");
  fs::remove_all(out);
  const ConvertSummary s =
      RunConvert(Options("vqa", {qa}, out, {{"ans2label", {Shared("vqa/ans2label.json")}}}), Toker());
  EXPECT_EQ(s.examples, 4u);
  EXPECT_EQ(s.rejects, 0u);
  PythonCheck("vqa", out, {qa}, {"ans2label=" + Shared("vqa/ans2label.json")});
  featdb::TxtDbReader db(out);
  const auto ex = db.Get("986768");  // "Green." -> "green", in UNITER's table
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->at("target").at("labels").as_array().size(), 1u);
}

TEST(Ve, RealSnliVeLinesAndBothImageFieldSpellings) {
  UNITER_REQUIRE_REFERENCES();
  RequireShared("snli-ve/sample_data.jsonl");
  const std::vector<std::string> anns = {Shared("snli-ve/sample_data.jsonl"), Fixtures() + "/ve_flickr30k_id.jsonl"};
  const std::string out = testing::TempDir("ve");
  fs::remove_all(out);
  const ConvertSummary s = RunConvert(Options("ve", anns, out), Toker());
  EXPECT_EQ(s.rejects, 0u);
  PythonCheck("ve", out, anns);
}

TEST(Ve, UncasedVocabularyLowerCasesThroughTheCli) {
  UNITER_REQUIRE_REFERENCES();
  RequireShared("snli-ve/sample_data.jsonl");
  RequireShared("vocab/bert-base-uncased-vocab.txt");
  const std::string ann = Shared("snli-ve/sample_data.jsonl");
  const std::string vocab = Shared("vocab/bert-base-uncased-vocab.txt");
  const std::string out = testing::TempDir("ve_uncased");
  fs::remove_all(out);
  // No --lower: the vocab's name says uncased, as in UNITER.
  const auto r = testing::Run(testing::Quote(testing::UniterBinary()) + " convert ve -q --threads 2 --ann " +
                              testing::Quote(ann) + " --vocab " + testing::Quote(vocab) + " -o " +
                              testing::Quote(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  PythonCheck("ve", out, {ann}, {}, vocab, /*lower=*/true);
  EXPECT_EQ(featdb::ReadJsonFile(out + "/meta.json")["do_lower_case"], true);
}

TEST(Itm, KarpathyCocoAndFlickrOneDbPerSplit) {
  UNITER_REQUIRE_REFERENCES();
  std::string coco_out;
  for (const char* name : {"dataset_coco.json", "dataset_flickr30k.json"}) {
    const std::string ann = Fixtures() + "/" + name;
    const std::string out = testing::TempDir(std::string("itm_") + name);
    if (coco_out.empty()) coco_out = out;
    fs::remove_all(out);
    const ConvertSummary s = RunConvert(Options("itm", {ann}, out), Toker());
    EXPECT_EQ(s.dbs.size(), std::string(name) == "dataset_coco.json" ? 4u : 3u);
    PythonCheck("itm", out, {ann});
  }
  // restval images are val2014 images.
  featdb::TxtDbReader restval(coco_out + "/itm_coco_restval.db");
  EXPECT_EQ(restval.Get("5")->at("img_fname").as_str(), "coco_val2014_000000391896.npz");
}

TEST(Refcoco, PickleInstancesAndSidecarsAsUniterPrepro) {
  UNITER_REQUIRE_REFERENCES();
  RequireShared("coco-mini/annotations/instances_val2017.json");
  const std::vector<std::string> anns = {Fixtures() + "/refs(unc).p",
                                         Shared("coco-mini/annotations/instances_val2017.json"),
                                         Fixtures() + "/iid_to_ann_ids.json"};
  const std::string out = testing::TempDir("refcoco");
  fs::remove_all(out);
  const ConvertSummary s = RunConvert(Options("refcoco", anns, out), Toker());
  EXPECT_EQ(s.dbs.size(), 4u);
  EXPECT_EQ(s.rejects, 0u);
  PythonCheck("refcoco", out, anns);
}

TEST(Vcr, ObjectReferencesPersonTokensAndLengths) {
  UNITER_REQUIRE_REFERENCES();
  std::string test_out;
  for (const char* split : {"val", "test"}) {
    const std::string ann = Fixtures() + "/" + split + ".jsonl";
    const std::string out = testing::TempDir(std::string("vcr_") + split);
    test_out = out;
    fs::remove_all(out);
    RunConvert(Options("vcr", {ann}, out), Toker());
    PythonCheck("vcr", out, {ann});
  }
  featdb::TxtDbReader db(test_out);
  EXPECT_EQ(db.Get("test-0")->at("qa_target").as_int(), -1);
}

TEST(Captions, RealCocoAndConceptualCaptions) {
  UNITER_REQUIRE_REFERENCES();
  RequireShared("coco-mini/annotations/captions_val2017.json");
  RequireShared("cc/Validation_GCC-1.1.0-Validation.tsv");
  const std::string coco = Shared("coco-mini/annotations/captions_val2017.json");
  std::string out = testing::TempDir("captions_coco");
  fs::remove_all(out);
  RunConvert(Options("captions", {coco}, out, {{"source", {"coco"}}}), Toker());
  PythonCheck("captions", out, {coco}, {"source=coco"});

  const std::string cc = Shared("cc/Validation_GCC-1.1.0-Validation.tsv");
  out = testing::TempDir("captions_cc");
  fs::remove_all(out);
  const ConvertSummary s = RunConvert(Options("captions", {cc}, out, {{"source", {"cc"}}}), Toker());
  EXPECT_GT(s.examples, 15000u);
  PythonCheck("captions", out, {cc}, {"source=cc"});
  featdb::TxtDbReader db(out);
  EXPECT_EQ(db.Get("0")->at("img_fname").as_str(), "gcc_val_000000000000.npz");
}

TEST(Captions, VisualGenomeRegionsAndSbu) {
  UNITER_REQUIRE_REFERENCES();
  for (const auto& [source, file] : std::vector<std::pair<std::string, std::string>>{
           {"vg", "region_descriptions.json"}, {"sbu", "sbu.json"}}) {
    const std::string ann = Fixtures() + "/" + file;
    const std::string out = testing::TempDir("captions_" + source);
    fs::remove_all(out);
    RunConvert(Options("captions", {ann}, out, {{"source", {source}}}), Toker());
    PythonCheck("captions", out, {ann}, {"source=" + source});
  }
}

}  // namespace
}  // namespace uniter::converters
