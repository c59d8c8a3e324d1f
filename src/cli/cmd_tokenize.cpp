// `rhead tokenize`: shows how a model's tokenizer splits a text — one "id<TAB>piece" line per
// token, or just the ids on one line with --ids. The model may be any file or folder that
// Tokenizer::load accepts, including vocab-only GGUFs and folders holding only tokenizer.json.
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "io/error.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace rhead::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool ids_only = false;
  bool no_bos = false;
  bool no_special = false;
  bool chat = false;
  std::string chat_template;
};

// Pieces may hold newlines, tabs or broken UTF-8; show them so that one token stays on one line.
std::string escape_piece(const std::string& piece) {
  std::string out;
  for (unsigned char c : piece) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02X", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

void run_tokenize(const TokenizeOptions& opt) {
  std::string text = opt.file.empty() ? opt.text : read_text_file(opt.file);  // bytes as they are
  Tokenizer tok = Tokenizer::load(opt.model);
  if (opt.chat || !opt.chat_template.empty()) {
    std::optional<ChatTemplateKind> kind;
    if (!opt.chat_template.empty()) {
      kind = choose_chat_template(tok, opt.chat_template, false);
      text = tok.apply_chat_template(*kind, {{"user", text}}, true);
    } else {
      text = tok.apply_chat_template({{"user", text}}, true);
    }
  }
  // A chat prompt already starts with the BOS text where the template wants one.
  bool add_bos = !opt.no_bos && !(opt.chat || !opt.chat_template.empty());
  std::vector<int32_t> ids = tok.encode(text, add_bos, !opt.no_special);
  if (opt.ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
    return;
  }
  for (int32_t id : ids) std::cout << id << "\t" << escape_piece(tok.piece(id)) << "\n";
}

const CommandRegistrar registrar(
    "tokenize",
    [](CLI::App& app) {
      auto opt = std::make_shared<TokenizeOptions>();
      CLI::App* cmd = app.add_subcommand("tokenize", "show the token ids and pieces of a text");
      cmd->add_option("-m,--model", opt->model,
                      "model or tokenizer: .gguf (vocab-only is fine), HF folder, tokenizer.json, tokenizer.model, "
                      "llama2.c .bin")
          ->required();
      CLI::Option* text_option = cmd->add_option("text", opt->text, "text to tokenize");
      CLI::Option* file_option = cmd->add_option("-f,--file", opt->file, "read the text from this file, byte for byte");
      cmd->add_flag("--ids", opt->ids_only, "print only the ids, space-separated, on one line");
      cmd->add_flag("--no-bos", opt->no_bos, "leave out the BOS token");
      cmd->add_flag("--no-special", opt->no_special, "encode special-token text (\"<s>\") as plain text");
      cmd->add_flag("--chat", opt->chat, "wrap the text as one user message in the model's chat template");
      cmd->add_option("--chat-template", opt->chat_template,
                      "use this chat template (" + chat_template_names() + ") instead of the model's; implies --chat");
      cmd->callback([opt, text_option, file_option] {
        // An empty TEXT ("") is a valid input, so count the options rather than test the strings.
        if (text_option->count() && file_option->count()) fail("tokenize", "give either TEXT or -f FILE, not both");
        if (!text_option->count() && !file_option->count()) fail("tokenize", "give a TEXT to tokenize or -f FILE");
        run_tokenize(*opt);
      });
    },
    Compute::files_only);

}  // namespace

}  // namespace rhead::cli
