// _rhead: the C++ half of the Python module `rhead` (python/rhead/ holds the Python half, with
// the documented API). A thin layer beside cli/: every function converts its arguments, calls
// the library entry point that the matching command calls (experiments/run_setup.h,
// experiments/generation.h, io/run_dir.h, analysis/score_map.h) with the GIL released, and
// converts the result. rhead::Error becomes rhead.Error carrying the one-line message.
//
// Interrupts: a run calls its progress callback after every finished key (the line is on disk
// by then). The callback takes the GIL, runs Python's signal handlers (Ctrl-C raises
// KeyboardInterrupt there) and the caller's callback; a Python exception thrown there unwinds
// the run and reaches the caller unchanged, and the run directory resumes on the next call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "analysis/score_map.h"
#include "conditions/options.h"
#include "experiments/explain_run.h"
#include "experiments/generation.h"
#include "experiments/run_setup.h"
#include "io/error.h"
#include "io/atomic_file.h"
#include "io/run_dir.h"
#include "model/config.h"
#include "report/explain_page.h"

namespace py = pybind11;
using nlohmann::json;

namespace rhead::python {
namespace {

// A loaded model and the options it was loaded with (sessions are sized from them).
struct PyModel {
  ModelOptions options;
  LoadedModel lm;
};

// Text from the model (token pieces may split a UTF-8 character): invalid bytes become U+FFFD.
py::str utf8(const std::string& s) {
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), static_cast<py::ssize_t>(s.size()), "replace"));
}

// A JSON value (json or ordered_json) as Python objects, object keys in their order.
template <class J>
py::object to_python(const J& j) {
  using value_t = typename J::value_t;
  switch (j.type()) {
    case value_t::null: return py::none();
    case value_t::boolean: return py::bool_(j.template get<bool>());
    case value_t::number_integer: return py::int_(j.template get<int64_t>());
    case value_t::number_unsigned: return py::int_(j.template get<uint64_t>());
    case value_t::number_float: return py::float_(j.template get<double>());
    case value_t::string: return utf8(j.template get_ref<const typename J::string_t&>());
    case value_t::array: {
      py::list l;
      for (const auto& v : j) l.append(to_python(v));
      return l;
    }
    case value_t::object: {
      py::dict d;
      for (const auto& [k, v] : j.items()) d[py::str(k)] = to_python(v);
      return d;
    }
    default: return py::none();
  }
}

// Overwrites `field` with options[name] when the caller gave it (not None).
template <class T>
void take(const py::dict& options, const char* name, T& field) {
  if (options.contains(name) && !options[name].is_none()) field = options[name].cast<T>();
}

// kv_window, kv_sink, kv_full, kv_policy into a KvRequest or KvOptions.
template <class Kv>
void take_kv(const py::dict& options, Kv& kv) {
  take(options, "kv_window", kv.window);
  take(options, "kv_sink", kv.sink);
  take(options, "kv_full", kv.full);
  take(options, "kv_policy", kv.policy_file);
  if (kv.window < 0 || kv.sink < 0) throw Error("kv_window and kv_sink must not be negative");
}

template <class T>
py::array_t<T> array(const std::vector<T>& data, std::vector<py::ssize_t> shape) {
  py::array_t<T> a(shape);
  std::copy(data.begin(), data.end(), a.mutable_data());
  return a;
}

std::shared_ptr<PyModel> load(const std::string& path, const std::string& device, int threads,
                              const std::string& tokenizer, int64_t ctx, const std::string& kv_type) {
  auto m = std::make_shared<PyModel>();
  m->options.model = path;
  m->options.device = device;
  m->options.threads = threads;
  m->options.tokenizer = tokenizer;
  m->options.n_ctx = ctx;
  m->options.kv_type = kv_type;
  if (threads < 0) throw Error("threads " + std::to_string(threads) + " is negative");
  if (ctx < 0) throw Error("ctx " + std::to_string(ctx) + " is negative");
  session_options(m->options);  // checks device and kv_type before the load
  py::gil_scoped_release release;
  m->lm = load_model_from_options(m->options);
  return m;
}

const Tokenizer& tokenizer_of(const PyModel& m) {
  if (!m.lm.tokenizer) throw Error(m.options.model + ": model has no tokenizer (pass tokenizer=)");
  return *m.lm.tokenizer;
}

py::dict config(const PyModel& m) {
  const ModelConfig& c = m.lm.model->config;
  py::dict d;
  d["family"] = c.family;
  d["architecture"] = c.architecture;
  d["layers"] = c.n_layer;
  d["heads"] = c.n_head;
  d["kv_heads"] = c.n_kv_head;
  d["head_dim"] = c.head_dim;
  d["vocab"] = c.n_vocab;
  d["context"] = c.n_ctx_train;
  d["path"] = m.lm.model->source;
  return d;
}

std::vector<int32_t> tokenize(const PyModel& m, const std::string& text, bool add_bos) {
  return tokenizer_of(m).encode(text, add_bos);
}

py::str detokenize(const PyModel& m, const std::vector<int32_t>& ids, bool skip_special) {
  const Tokenizer& tok = tokenizer_of(m);
  const int n_vocab = m.lm.model->config.n_vocab;
  for (int32_t id : ids)
    if (id < 0 || id >= n_vocab)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(n_vocab));
  return utf8(tok.decode(ids, skip_special));
}

py::dict generate(const PyModel& m, const std::string& prompt, const py::dict& options) {
  GenerationRequest q;
  q.prompt = prompt;
  take(options, "max_new_tokens", q.max_new_tokens);
  take(options, "add_bos", q.add_bos);
  take(options, "stop_at_eos", q.stop_at_eos);
  take(options, "probes", q.probes);
  take(options, "top_k", q.top_k);
  take(options, "mask", q.mask);
  std::string mode = "uniform", phase = "decode";
  take(options, "mask_mode", mode);
  take(options, "mask_phase", phase);
  q.mask_mode = parse_mask_mode(mode);
  q.mask_phase = parse_mask_phase(phase);
  take(options, "scores", q.scores);
  take(options, "seed", q.seed);
  take_kv(options, q.kv);
  Generation g;
  {
    py::gil_scoped_release release;
    g = rhead::generate(m.lm, session_options(m.options), q);
  }
  py::dict d;
  d["prompt_tokens"] = g.prompt_tokens;
  d["tokens"] = g.tokens;
  d["text"] = utf8(g.text);
  d["prefill_seconds"] = g.timing.prefill_seconds;
  d["decode_seconds"] = g.timing.decode_seconds;
  d["kv_bytes_held"] = g.kv_bytes_held;
  const ModelConfig& c = m.lm.model->config;
  if (q.probes) {
    const ProbeTrace& t = g.probes;
    const std::vector<py::ssize_t> shape = {t.n_steps, t.n_layer, t.n_head};
    py::dict p;
    p["positions"] = array(t.positions, {t.n_steps});
    p["argmax"] = array(t.argmax, shape);
    p["argmax_weight"] = array(t.argmax_weight, shape);
    p["argmax_token"] = array(t.argmax_token, shape);
    p["copy"] = array(t.copy, shape).attr("astype")("bool");
    p["sink_mass"] = array(t.sink_mass, shape);
    if (t.top_k > 0) {
      p["topk"] = array(t.topk, {t.n_steps, t.n_layer, t.n_head, t.top_k});
      p["topk_weight"] = array(t.topk_weight, {t.n_steps, t.n_layer, t.n_head, t.top_k});
    }
    d["probes"] = p;
  }
  std::vector<uint8_t> masked(static_cast<size_t>(c.n_layer) * c.n_head, 0), kv_full(masked.size(), 1);
  for (int l = 0; l < c.n_layer; ++l)
    for (int h = 0; h < c.n_head; ++h) {
      const size_t i = static_cast<size_t>(l) * c.n_head + h;
      masked[i] = !g.mask.empty() && g.mask.contains(l, h);
      kv_full[i] = !g.kv_policy.active() || g.kv_policy.is_full(l, h);
    }
  d["masked"] = array(masked, {c.n_layer, c.n_head}).attr("astype")("bool");
  d["kv_full"] = array(kv_full, {c.n_layer, c.n_head}).attr("astype")("bool");
  return d;
}

// Progress of a run: a bar on Python's sys.stderr (when `show`), the caller's callback with
// (done, total, line), and Python's signal handlers, between keys.
struct RunProgress {
  bool show;
  py::object callback;
  std::unique_ptr<ProgressBar> bar;
  int passed = 0;

  RunProgress(bool show_bar, py::object cb) : show(show_bar), callback(std::move(cb)) {
    py::object err = py::module_::import("sys").attr("stderr");
    const bool tty = show && py::hasattr(err, "isatty") && err.attr("isatty")().cast<bool>();
    bar = std::make_unique<ProgressBar>(show, tty, [](const std::string& text) {
      py::gil_scoped_acquire gil;
      py::object e = py::module_::import("sys").attr("stderr");
      e.attr("write")(text);
      e.attr("flush")();
    });
  }

  // Called with the GIL released.
  void step(int done, int total, bool pass, const std::string& label, const json& line, double elapsed) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    passed += pass;
    bar->update(done, total, passed, elapsed, label);
    if (callback && !callback.is_none()) callback(done, total, to_python(line));
  }
  void finish() { bar->finish(); }
};

NiahOptions niah_options_of(const PyModel& m, const py::dict& options) {
  NiahOptions o;
  o.model = m.options;
  take(options, "needles", o.needles);
  take(options, "haystack", o.haystack);
  take(options, "lengths", o.lengths);
  take(options, "depths", o.depths);
  take(options, "chat_template", o.chat_template);
  take(options, "no_chat", o.no_chat);
  take(options, "prompt_template", o.prompt_template);
  take(options, "buffer", o.buffer);
  take(options, "max_new_tokens", o.max_new_tokens);
  o.no_prefix_reuse =
      options.contains("prefix_reuse") && !options["prefix_reuse"].is_none() && !options["prefix_reuse"].cast<bool>();
  take(options, "out", o.output);
  take(options, "shard", o.shard);
  if (o.output.empty()) throw Error("out: the run directory is not given");
  if (o.depths < 1) throw Error("depths " + std::to_string(o.depths) + ": expected a positive count");
  if (o.buffer < 0) throw Error("buffer " + std::to_string(o.buffer) + " is negative");
  if (o.max_new_tokens < 1) throw Error("max_new_tokens " + std::to_string(o.max_new_tokens) + ": expected at least 1");
  return o;
}

py::object detect(const PyModel& m, const py::dict& options, bool show_progress, py::object callback) {
  const NiahOptions o = niah_options_of(m, options);
  std::string methods = "copy";
  take(options, "methods", methods);
  parse_detect_methods(methods);  // refused before anything runs
  RunProgress progress(show_progress, std::move(callback));
  DetectSummary s;
  {
    py::gil_scoped_release release;
    DetectOptions d;
    d.progress = [&](int done, int total, const TestResult& r, double elapsed) {
      progress.step(done, total, r.counted, r.test_id, to_json(r), elapsed);
    };
    s = run_detect_with_methods(m.lm, o, d, methods, nullptr);
  }
  progress.finish();
  return to_python(s.to_json());
}

py::object niah(const PyModel& m, const py::dict& options, bool show_progress, py::object callback) {
  const NiahOptions o = niah_options_of(m, options);
  NiahCausalRunOptions r;
  take(options, "mask", r.masks.mask);
  take(options, "scores", r.masks.scores);
  take(options, "seeds", r.masks.seeds);
  take(options, "mask_mode", r.masks.mode);
  take(options, "mask_phase", r.masks.phase);
  take(options, "sweep", r.masks.sweep);
  take(options, "sweep_random", r.masks.sweep_random);
  take(options, "baseline", r.baseline);
  take_kv(options, r.kv);
  take(options, "kv_sweep_window", r.kv.sweep_window);
  take(options, "kv_sweep_full", r.kv.sweep_full);
  take(options, "sink_heads", r.sink_heads);
  take(options, "support_heads", r.support_heads);
  if (r.masks.seeds.empty()) throw Error("seeds: give at least one seed");
  if (r.support_heads < 1)
    throw Error("support_heads " + std::to_string(r.support_heads) + ": expected a positive count");
  RunProgress progress(show_progress, std::move(callback));
  NiahCausalSummary s;
  {
    py::gil_scoped_release release;
    s = run_niah_from_options(
        m.lm, o, r, [&](int done, int total, const std::string& mask, const TestResult& t, double elapsed) {
          progress.step(done, total, t.rouge_recall > kPassScore, mask + " " + t.test_id, to_json(t), elapsed);
        });
  }
  progress.finish();
  return to_python(s.to_json());
}

py::object explain(const PyModel& m, const std::string& context, const std::string& question, const py::dict& options) {
  ExplainRunOptions o;
  o.context = context;
  o.question = question;
  take(options, "context_file", o.context_file);
  take(options, "scores", o.scores);
  take(options, "chat_template", o.chat_template);
  take(options, "no_chat", o.no_chat);
  take(options, "prompt_template", o.prompt_template);
  take(options, "max_new_tokens", o.max_new_tokens);
  take(options, "mask", o.mask);
  take(options, "mask_mode", o.mask_mode);
  take(options, "mask_phase", o.mask_phase);
  take(options, "seed", o.seed);
  take(options, "top_heads", o.top_heads);
  take(options, "tau", o.tau);
  take_kv(options, o.kv);
  std::string html;
  take(options, "html", html);
  if (o.scores.empty()) throw Error("scores: a head_score JSON or a detect directory is needed");
  ExplainRun run;
  {
    py::gil_scoped_release release;
    run = explain_from_options(m.lm, m.options, o);
    if (!html.empty()) {
      report::ExplainPageInfo info{m.lm.model->source, o.context_file, o.question, run.mask.empty() ? "" : o.mask};
      write_file_atomic(html, report::build_explain_page(run.explanation, o.context, info));
    }
  }
  return to_python(run.document);
}

py::list read_results(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/results.jsonl")) fail(dir, "not a run directory (no results.jsonl)");
  std::vector<json> lines;
  {
    py::gil_scoped_release release;
    lines = read_results_lines(dir + "/results.jsonl", false);
  }
  py::list out;
  for (const auto& j : lines) out.append(to_python(j));
  return out;
}

// A score map: (layers, heads, means [layers, heads], per-test [tests, layers, heads] or None).
py::tuple read_scores(const std::string& path) {
  const analysis::ScoreMap s = analysis::load_score_map(path);
  std::vector<double> means(s.head_count());
  for (size_t i = 0; i < means.size(); ++i) means[i] = s.mean[s.head_at(i)];
  py::object per_test = py::none();
  const size_t tests = s.test_count();
  bool rectangular = !s.lists.empty();
  for (const auto& l : s.lists) rectangular &= l.size() == tests;
  if (rectangular) {
    std::vector<double> v(tests * s.head_count());
    for (size_t i = 0; i < s.head_count(); ++i)
      for (size_t t = 0; t < tests; ++t) v[t * s.head_count() + i] = s.lists[i][t];
    per_test = array(v, {static_cast<py::ssize_t>(tests), s.n_layer, s.n_head});
  }
  return py::make_tuple(s.n_layer, s.n_head, array(means, {s.n_layer, s.n_head}), per_test);
}

}  // namespace
}  // namespace rhead::python

PYBIND11_MODULE(_rhead, m) {
  using namespace rhead::python;
  m.doc() = "rhead's C++ core; use the `rhead` package, which documents the API.";
  m.attr("__version__") = RHEAD_VERSION;
  py::register_exception<rhead::Error>(m, "Error", PyExc_RuntimeError);
  py::class_<PyModel, std::shared_ptr<PyModel>>(m, "_Model")
      .def("config", &config)
      .def("tokenize", &tokenize, py::arg("text"), py::arg("add_bos"))
      .def("detokenize", &detokenize, py::arg("ids"), py::arg("skip_special"))
      .def("generate", &generate, py::arg("prompt"), py::arg("options"))
      .def_property_readonly("path", [](const PyModel& p) { return p.options.model; })
      .def_property_readonly("device", [](const PyModel& p) {
        return p.options.device.empty() ? std::string(rhead::device_name(rhead::default_device())) : p.options.device;
      });
  m.def("load", &load, py::arg("path"), py::arg("device"), py::arg("threads"), py::arg("tokenizer"), py::arg("ctx"),
        py::arg("kv_type"));
  m.def("detect", &detect, py::arg("model"), py::arg("options"), py::arg("progress"), py::arg("callback"));
  m.def("niah", &niah, py::arg("model"), py::arg("options"), py::arg("progress"), py::arg("callback"));
  m.def("explain", &explain, py::arg("model"), py::arg("context"), py::arg("question"), py::arg("options"));
  m.def("read_results", &read_results, py::arg("dir"));
  m.def("read_scores", &read_scores, py::arg("path"));
}
