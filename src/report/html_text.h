// Text made safe for HTML pages and for JSON embedded in them.
#pragma once
#include <string>

namespace rhead::report {

// & < > " ' as entities, control characters but tab and newline dropped: safe in element text
// and quoted attribute values of HTML and of SVG (XML 1.0).
std::string html_escape(const std::string& text);

// JSON text made safe inside <script type="application/json">: "</" becomes "<\/".
std::string script_safe_json(const std::string& json_text);

}  // namespace rhead::report
