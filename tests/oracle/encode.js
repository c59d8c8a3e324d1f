// Reference encoder for rhead's tokenizer tests: loads an HF tokenizer folder
// (tokenizer.json + tokenizer_config.json) with @lenml/tokenizers, a JavaScript port of
// the Hugging Face tokenizers, and prints the ids of each input file on its own line,
// space-separated, without special tokens, so the C++ tests can compare id for id.
// Usage: node encode.js TOKENIZER_DIR FILE...
"use strict";
const fs = require("fs");
const path = require("path");
const { TokenizerLoader } = require("@lenml/tokenizers");

function main(argv) {
  if (argv.length < 1) {
    process.stderr.write("usage: node encode.js TOKENIZER_DIR FILE...\n");
    return 2;
  }
  const dir = argv[0];
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const configPath = path.join(dir, "tokenizer_config.json");
  // The loader wants a config object even when the folder has none.
  const tokenizerConfig = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const lines = [];
  for (const file of argv.slice(1)) {
    const text = fs.readFileSync(file, "utf8");
    const ids = tokenizer.encode(text, { add_special_tokens: false });
    lines.push(ids.join(" "));
  }
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}

process.exitCode = main(process.argv.slice(2));
