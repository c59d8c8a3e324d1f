// Text made safe for HTML pages and for JSON embedded in them.
#pragma once
#include <string>

namespace rhead::report {

// & < > " ' as entities: safe in element text and in quoted attribute values.
std::string html_escape(const std::string& text);

// JSON text made safe inside <script type="application/json">: "</" becomes "<\/".
std::string script_safe_json(const std::string& json_text);

}  // namespace rhead::report
