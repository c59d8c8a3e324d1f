// Loading a model the way users have it: a GGUF file, a Hugging Face directory
// (config.json + safetensors), a llama2.c .bin checkpoint, or a built-in model.
#pragma once
#include <memory>
#include <string>

#include "io/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

struct LoadOptions {
  std::string tokenizer_path;  // llama2.c .bin models: their tokenizer file (tok512.bin / .model)
};

struct LoadedModel {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the model ships none
  // The tokenizer; rhead::Error "SOURCE: model has no tokenizer (pass --tokenizer)" when
  // there is none. Every command and experiment that reads text asks here.
  const Tokenizer& require_tokenizer() const;
};

// Dispatches on the path: "builtin:NAME", *.gguf, a directory (HF), *.bin (llama2.c).
LoadedModel load_model(const std::string& path, const LoadOptions& options = {});

std::shared_ptr<Model> model_from_gguf(const GGUFFile& gguf);
std::shared_ptr<Model> load_hf_model(const std::string& dir);
std::shared_ptr<Model> load_llama2c_model(const std::string& path);

}  // namespace rhead
