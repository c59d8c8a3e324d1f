// `--shard auto`: a Slurm job array's task runs the same tests as the explicit shard I/N it
// stands for (I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT), and
// outside an array, or with an index outside it, the command fails with a one-line reason.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <sstream>
#include <string>

#include "test_support.h"

namespace {

using rhead::testing::read_text_file;
using rhead::testing::shell_quote;

struct DetectRun {
  int exit_code;
  std::string err;
};

DetectRun detect(const std::string& env, const std::string& shard, const std::string& out) {
  const std::string err_path = out + ".err";
  const std::string cmd = env + " " + shell_quote(rhead::testing::rhead_binary()) +
                          " detect -m builtin:induction --lengths 300:400:2 --depths 2 -q --device cpu --shard " +
                          shell_quote(shard) + " -o " + shell_quote(out) + " 2>" + shell_quote(err_path);
  const rhead::testing::CommandResult r = rhead::testing::run_command(cmd);
  return {r.exit_code, read_text_file(err_path)};
}

std::set<std::string> test_ids(const std::string& dir) {
  std::set<std::string> ids;
  std::istringstream in(read_text_file(dir + "/results.jsonl"));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) ids.insert(nlohmann::json::parse(line).at("test_id").get<std::string>());
  return ids;
}

TEST(ShardAuto, SlurmArrayTaskRunsItsExplicitShard) {
  rhead::testing::MkdtempDir d("rhead_shard_auto_");
  const std::string clean = "env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN";
  const DetectRun a =
      detect(clean + " SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=3 SLURM_ARRAY_TASK_COUNT=2", "auto", d.sub("auto"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const DetectRun e = detect(clean, "1/2", d.sub("explicit"));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const std::set<std::string> ids = test_ids(d.sub("auto"));
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(ids, test_ids(d.sub("explicit")));

  const DetectRun outside = detect(clean, "auto", d.sub("none"));
  EXPECT_NE(outside.exit_code, 0);
  EXPECT_NE(outside.err.find("SLURM_ARRAY_TASK_ID is not set"), std::string::npos) << outside.err;
  const DetectRun past = detect(clean + " SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=2", "auto", d.sub("past"));
  EXPECT_NE(past.exit_code, 0);
  EXPECT_NE(past.err.find("outside the array"), std::string::npos) << past.err;
}

}  // namespace
