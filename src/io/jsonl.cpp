// JSON Lines input shared by the task readers.
#include "io/jsonl.h"

#include <sstream>

#include "io/error.h"
#include "io/json.h"

namespace rhead {

void for_each_jsonl_object(
    const std::string& text, const std::string& where,
    const std::function<void(const nlohmann::json& object, const std::string& at, int line)>& read_item) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string at = where + ":" + std::to_string(n);
    const nlohmann::json j = parse_json(line, at);
    if (!j.is_object()) throw Error(at + ": expected an object");
    // A library failure inside the caller's reader still names the line.
    guard_input(at, [&] { read_item(j, at, n); });
  }
}

std::string jsonl_item_id(const nlohmann::json& object, int line) {
  if (!object.contains("id")) return "line " + std::to_string(line);
  const nlohmann::json& id = object["id"];
  return id.is_string() ? id.get<std::string>() : id.dump();
}

}  // namespace rhead
