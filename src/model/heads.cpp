// HeadId keys, the head-selection grammar (one table of kinds) and the copy-paste rule.
#include "model/heads.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

#include "io/builtin_data.h"
#include "io/error.h"
#include "io/json.h"
#include "io/text.h"

namespace rhead {
namespace {

bool parse_count(std::string_view s, int& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  // Bounded: a layer, head or count this large is corrupt input, and max + 1 must not overflow.
  return ec == std::errc() && p == end && out >= 0 && out < (1 << 24);
}

[[noreturn]] void bad_spec(std::string_view spec, const std::string& problem) {
  throw Error("mask '" + std::string(spec) + "': " + problem);
}

void check_shape(const HeadGrid<double>& scores, const ModelConfig& config) {
  if (!scores.same_shape(config.n_layer, config.n_head))
    throw Error("head scores cover " + std::to_string(scores.n_layer) + " layers x " + std::to_string(scores.n_head) +
                " heads, the model has " + std::to_string(config.n_layer) + " x " + std::to_string(config.n_head));
}

void check_in_model(std::string_view spec, int layer, int index, int per_layer, const ModelConfig& c,
                    const char* unit) {
  if (layer >= c.n_layer)
    bad_spec(spec, "layer " + std::to_string(layer) + " does not exist (the model has " + std::to_string(c.n_layer) +
                       " layers)");
  if (index >= per_layer)
    bad_spec(spec, std::string(unit) + " " + std::to_string(index) + " does not exist (the model has " +
                       std::to_string(per_layer) + " " + unit + "s per layer)");
}

std::vector<HeadId> sorted_unique(std::vector<HeadId> heads) {
  std::sort(heads.begin(), heads.end());
  heads.erase(std::unique(heads.begin(), heads.end()), heads.end());
  return heads;
}

std::vector<HeadId> top_k(const HeadGrid<double>& scores, int k) {
  if (static_cast<size_t>(k) > scores.size())
    throw Error("top:" + std::to_string(k) + ": the model has only " + std::to_string(scores.size()) + " heads");
  // A score map whose lists are all empty (or all zero) ranks nothing: its "top" heads would
  // be whichever come first, so the selection is refused rather than made up.
  if (k > 0 && std::none_of(scores.begin(), scores.end(), [](double v) { return v > 0; }))
    throw Error("top:" + std::to_string(k) + ": no head has a score above 0 (the score lists are empty or all zero)");
  const std::vector<size_t> order = heads_by_score(scores);
  std::vector<HeadId> out;
  for (int i = 0; i < k; ++i) out.push_back(scores.head_at(order[i]));
  return out;
}

std::vector<HeadId> random_k(const HeadGrid<double>& scores, int k, uint64_t seed) {
  const std::vector<HeadId> excluded = random_exclusions(scores);
  const std::set<HeadId> skip(excluded.begin(), excluded.end());
  std::vector<HeadId> pool;
  for (size_t i = 0; i < scores.size(); ++i)
    if (!skip.count(scores.head_at(i))) pool.push_back(scores.head_at(i));
  if (static_cast<size_t>(k) > pool.size())
    throw Error("random:" + std::to_string(k) + ": only " + std::to_string(pool.size()) + " of the model's " +
                std::to_string(scores.size()) + " heads are outside the top " + std::to_string(kRandomExcludeTop) +
                " heads with a score above 0");
  // Partial Fisher-Yates with SplitMix64: the draw is the same on every platform.
  SplitMix64 rng(seed ^ 0x5EEDC0DE2404ULL);
  for (int i = 0; i < k; ++i) {
    const size_t j = i + static_cast<size_t>(rng.below(pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  return sorted_unique(std::vector<HeadId>(pool.begin(), pool.begin() + k));
}

// One row per kind: how its arguments parse, and how a parsed selection resolves.
struct KindRow {
  const char* name;
  SelectionKind kind;
  bool has_args;
  std::function<void(std::string_view spec, std::string_view args, HeadSelection&)> parse;
  std::function<std::vector<HeadId>(const HeadSelection&, const ModelConfig&, const HeadGrid<double>*, uint64_t)>
      resolve;
};

void parse_pairs(std::string_view spec, std::string_view args, HeadSelection& s) {
  for (const std::string& item : split_on(std::string(args), ',')) {
    const HeadId id = HeadId::parse(item, "mask '" + std::string(spec) + "'");
    // A head listed twice is a typo for another head, not a second mask of the same one.
    for (const HeadId& seen : s.items)
      if (seen.layer == id.layer && seen.head == id.head) bad_spec(spec, "'" + id.key() + "' is listed twice");
    s.items.push_back(id);
  }
}

void parse_k(std::string_view spec, std::string_view args, HeadSelection& s) {
  if (!parse_count(args, s.k)) bad_spec(spec, "'" + std::string(args) + "' is not a head count");
}

const std::vector<KindRow>& kinds() {
  static const std::vector<KindRow> table = {
      {"none", SelectionKind::none, false, nullptr,
       [](const HeadSelection&, const ModelConfig&, const HeadGrid<double>*, uint64_t) {
         return std::vector<HeadId>();
       }},
      {"all", SelectionKind::all, false, nullptr,
       [](const HeadSelection&, const ModelConfig& c, const HeadGrid<double>*, uint64_t) {
         std::vector<HeadId> out;
         for (int l = 0; l < c.n_layer; ++l)
           for (int h = 0; h < c.n_head; ++h) out.push_back({l, h});
         return out;
       }},
      {"heads", SelectionKind::heads, true, parse_pairs,
       [](const HeadSelection& s, const ModelConfig& c, const HeadGrid<double>*, uint64_t) {
         for (HeadId h : s.items) check_in_model(s.text, h.layer, h.head, c.n_head, c, "head");
         return sorted_unique(s.items);
       }},
      // A file's heads resolve as heads:... (the row above; selection kind heads).
      {"file", SelectionKind::heads, true,
       [](std::string_view, std::string_view args, HeadSelection& s) { s.items = read_head_list(std::string(args)); },
       nullptr},
      {"kv", SelectionKind::kv, true, parse_pairs,
       [](const HeadSelection& s, const ModelConfig& c, const HeadGrid<double>*, uint64_t) {
         std::vector<HeadId> out;
         const int g = c.group_size();
         for (HeadId item : s.items) {
           check_in_model(s.text, item.layer, item.head, c.n_kv_head, c, "KV group");
           for (int h = item.head * g; h < (item.head + 1) * g; ++h) out.push_back({item.layer, h});
         }
         return sorted_unique(out);
       }},
      {"top", SelectionKind::top, true, parse_k,
       [](const HeadSelection& s, const ModelConfig&, const HeadGrid<double>* scores, uint64_t) {
         return top_k(*scores, s.k);
       }},
      {"random", SelectionKind::random, true, parse_k,
       [](const HeadSelection& s, const ModelConfig&, const HeadGrid<double>* scores, uint64_t seed) {
         return random_k(*scores, s.k, seed);
       }},
  };
  return table;
}

const KindRow& row_of(SelectionKind kind) {
  for (const KindRow& r : kinds())
    if (r.kind == kind) return r;
  throw Error("unknown head selection kind");
}

}  // namespace

std::string HeadId::key() const { return std::to_string(layer) + "-" + std::to_string(head); }

HeadId HeadId::parse(std::string_view text, std::string_view what) {
  const size_t dash = text.find('-');
  HeadId id;
  if (dash == std::string_view::npos || !parse_count(text.substr(0, dash), id.layer) ||
      !parse_count(text.substr(dash + 1), id.head))
    throw Error(std::string(what) + ": '" + std::string(text) +
                "' is not LAYER-INDEX (two non-negative integers, e.g. 3-7)");
  return id;
}

std::vector<std::string> head_keys(const std::vector<HeadId>& heads) {
  std::vector<std::string> out;
  for (const HeadId& h : heads) out.push_back(h.key());
  return out;
}

std::vector<size_t> heads_by_score(const HeadGrid<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

const char* selection_kind_name(SelectionKind kind) { return row_of(kind).name; }

std::vector<HeadId> parse_head_list(std::string_view text, const std::string& where) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) fail(where, "empty head list");
  std::vector<HeadId> out;
  if (text[first] == '[') {
    const nlohmann::json doc = parse_json(text, where);
    if (!doc.is_array()) fail(where, "expected a list of [layer, head] pairs");
    for (const auto& pair : doc) {
      if (!pair.is_array() || pair.size() != 2)
        fail(where, "expected a list of [layer, head] pairs, found " + pair.dump());
      out.push_back({json_int(pair[0], where, "a layer", 0), json_int(pair[1], where, "a head", 0)});
    }
  } else {
    for (std::string item : split_on(std::string(text), ',')) {
      const auto b = item.find_first_not_of(" \t\r\n"), e = item.find_last_not_of(" \t\r\n");
      item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
      out.push_back(HeadId::parse(item, where));
    }
  }
  if (out.empty()) fail(where, "empty head list");
  std::vector<HeadId> seen = out;
  std::sort(seen.begin(), seen.end());
  if (std::adjacent_find(seen.begin(), seen.end()) != seen.end())
    fail(where, "head " + std::adjacent_find(seen.begin(), seen.end())->key() + " is listed twice");
  return out;
}

std::vector<HeadId> read_head_list(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot read the head list");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_head_list(text.str(), path);
}

std::string qrhead_head_list(const std::vector<HeadId>& heads) {
  std::string out;
  for (const HeadId& h : heads) out += (out.empty() ? "" : ",") + h.key();
  return out + "\n";
}

std::string redeep_head_list(const std::vector<HeadId>& heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const HeadId& h : heads) out.push_back({h.layer, h.head});
  return out.dump() + "\n";
}

HeadSelection parse_head_selection(std::string_view spec) {
  HeadSelection s;
  s.text = std::string(spec);
  std::string names;
  for (const KindRow& r : kinds())
    names += (names.empty() ? "" : ", ") + std::string(r.name) + (r.has_args ? ":..." : "");
  const size_t colon = spec.find(':');
  const std::string_view kind = spec.substr(0, colon);
  for (const KindRow& r : kinds()) {
    if (kind != r.name) continue;
    if (!r.has_args) {
      if (colon != std::string_view::npos) bad_spec(spec, "'" + std::string(kind) + "' takes no arguments");
    } else {
      if (colon == std::string_view::npos) bad_spec(spec, "expected KIND:ARGS with KIND one of " + names);
      const std::string_view args = spec.substr(colon + 1);
      if (args.empty()) bad_spec(spec, "no heads listed after '" + std::string(kind) + ":'");
      r.parse(spec, args, s);
    }
    s.kind = r.kind;
    return s;
  }
  if (colon == std::string_view::npos) bad_spec(spec, "expected KIND:ARGS with KIND one of " + names);
  bad_spec(spec, "unknown kind '" + std::string(kind) + "' (expected " + names + ")");
}

std::vector<HeadId> select_heads(const HeadSelection& selection, const ModelConfig& config,
                                 const HeadGrid<double>* scores, uint64_t seed) {
  if (selection.needs_scores()) {
    if (!scores) bad_spec(selection.text, "needs --scores (a head_score JSON or a detect directory)");
    check_shape(*scores, config);
  }
  return row_of(selection.kind).resolve(selection, config, scores, seed);
}

std::vector<HeadId> select_heads(std::string_view spec, const ModelConfig& config, const HeadGrid<double>* scores,
                                 uint64_t seed) {
  return select_heads(parse_head_selection(spec), config, scores, seed);
}

std::vector<HeadId> random_exclusions(const HeadGrid<double>& scores, int exclude_top) {
  const std::vector<size_t> order = heads_by_score(scores);
  std::vector<HeadId> out;
  for (size_t i = 0; i < order.size() && static_cast<int>(i) < exclude_top; ++i) {
    if (!(scores[order[i]] > 0)) break;  // sorted: the rest score 0 too
    out.push_back(scores.head_at(order[i]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_copy(int64_t argmax_position, std::span<const int32_t> tokens, int32_t emitted, bool overridden) {
  return !overridden && argmax_position >= 0 && argmax_position < static_cast<int64_t>(tokens.size()) &&
         tokens[argmax_position] == emitted;
}

std::pair<SelectionKind, std::vector<int>> parse_sweep_spec(const std::string& spec) {
  SelectionKind kind = SelectionKind::top;
  std::string list = spec;
  const size_t colon = spec.find(':');
  if (colon != std::string::npos) {
    const std::string name = spec.substr(0, colon);
    if (name == "top")
      kind = SelectionKind::top;
    else if (name == "random")
      kind = SelectionKind::random;
    else
      throw Error("--sweep '" + spec + "': expected top:K1,K2,... or random:K1,K2,...");
    list = spec.substr(colon + 1);
  }
  std::vector<int> ks;
  for (const auto& item : split_on(list, ',')) ks.push_back(parse_head_selection("top:" + item).k);
  if (ks.empty()) throw Error("--sweep '" + spec + "': no K given");
  return {kind, ks};
}

}  // namespace rhead
