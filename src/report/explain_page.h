// The page of `rhead explain --html`: the context and the answer on one self-contained
// HTML page (inline CSS, inline script, the explanation as embedded JSON; no requests).
// Answer tokens are coloured by support; hovering or clicking one highlights the context
// tokens it was copied from and lists the copying heads with their weights. Unsupported
// tokens are marked.
//
// Hooks for tests: each answer token is <span class="tok SUPPORT" data-i="I">, each context
// token <span class="ctx" data-pos="POS"> (POS: prompt position); highlighted context tokens
// carry the class "src"; the embedded JSON is <script id="explain-data">.
#pragma once
#include <string>

#include "support/explain.h"

namespace rhead::report {

struct ExplainPageInfo {
  std::string model;         // shown in the header
  std::string context_path;  // shown in the header
  std::string question;
  std::string mask;  // "" or the mask spec
};

// `context` is the document text the explanation's byte ranges index.
std::string build_explain_page(const Explanation& e, const std::string& context, const ExplainPageInfo& info);

}  // namespace rhead::report
