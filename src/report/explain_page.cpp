// HTML page of one explanation.
#include "report/explain_page.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "report/html_text.h"

namespace rhead::report {

namespace {

const char* kStyle = R"CSS(
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 70em; color: #222; padding: 0 1em; }
h1 { font-size: 1.3em; margin-bottom: .2em; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.meta { color: #555; font-size: .9em; }
#answer { font: 1.15em/1.9 ui-monospace, monospace; white-space: pre-wrap; border: 1px solid #ccc; padding: .4em .6em; border-radius: 4px; }
.tok { cursor: pointer; border-radius: 3px; padding: 1px 0; }
.tok.copied { background: #c8ecc9; }
.tok.attended { background: #fbe7a6; }
.tok.unsupported { background: #f7c9c9; text-decoration: underline wavy #c0392b; }
.tok.active { outline: 2px solid #1f5fbf; }
.legend span { margin-right: 1.2em; padding: 0 .4em; }
#details { min-height: 4em; border-left: 3px solid #1f5fbf; padding: .3em .8em; background: #f6f8fb; margin-top: .6em; }
#details table { border-collapse: collapse; font-size: .9em; }
#details td, #details th { padding: 1px .7em 1px 0; text-align: left; }
#context { font: .9em/1.6 ui-monospace, monospace; white-space: pre-wrap; word-wrap: break-word; max-height: 32em; overflow-y: auto; border: 1px solid #ccc; padding: .5em .7em; border-radius: 4px; }
.ctx.src { background: #ffd54a; outline: 1px solid #b8860b; }
.ctx.source { border-bottom: 2px solid #2e7d32; }
#sources { border-collapse: collapse; font-size: .9em; margin: .4em 0; }
#sources td, #sources th { border: 1px solid #ddd; padding: 2px .6em; text-align: left; vertical-align: top; }
#sources mark { background: #ffd54a; }
)CSS";

const char* kScript = R"JS(
(function () {
  const data = JSON.parse(document.getElementById('explain-data').textContent);
  const context = new Map();
  document.querySelectorAll('#context .ctx').forEach(function (el) { context.set(Number(el.dataset.pos), el); });
  const tokens = Array.from(document.querySelectorAll('#answer .tok'));
  const details = document.getElementById('details');
  let pinned = -1;

  function cell(row, tag, text) {
    const c = document.createElement(tag);
    c.textContent = text;
    row.appendChild(c);
  }

  function show(i, scroll) {
    document.querySelectorAll('#context .src').forEach(function (el) { el.classList.remove('src'); });
    tokens.forEach(function (t) { t.classList.toggle('active', Number(t.dataset.i) === i); });
    details.replaceChildren();
    if (i < 0) {
      details.textContent = 'Hover over or click an answer token to see where it came from.';
      return;
    }
    const t = data.tokens[i];
    const head = document.createElement('p');
    head.textContent = JSON.stringify(t.piece) + ': ' + t.support + ', attention inside the document ' +
        t.document_mass.toFixed(3) + ', on the first token ' + t.sink_mass.toFixed(3);
    details.appendChild(head);
    let first = null;
    if (t.sources.length === 0) {
      const p = document.createElement('p');
      p.textContent = 'No top head copied this token from the document.';
      details.appendChild(p);
    } else {
      const table = document.createElement('table');
      const top = document.createElement('tr');
      ['head', 'weight', 'position', 'bytes'].forEach(function (h) { cell(top, 'th', h); });
      table.appendChild(top);
      t.sources.forEach(function (s) {
        const row = document.createElement('tr');
        cell(row, 'td', s.head);
        cell(row, 'td', s.weight.toFixed(3));
        cell(row, 'td', String(s.pos));
        cell(row, 'td', s.char_begin + '-' + s.char_end);
        table.appendChild(row);
        const el = context.get(s.pos);
        if (el) {
          el.classList.add('src');
          if (!first) first = el;
        }
      });
      details.appendChild(table);
    }
    if (scroll && first) first.scrollIntoView({ block: 'center' });
  }

  tokens.forEach(function (t) {
    const i = Number(t.dataset.i);
    t.addEventListener('mouseenter', function () { show(i, false); });
    t.addEventListener('mouseleave', function () { show(pinned, false); });
    t.addEventListener('click', function () { pinned = pinned === i ? -1 : i; show(i, true); });
    t.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pinned = i; show(i, true); }
    });
  });
  show(-1, false);
})();
)JS";

std::string fixed(double v, int decimals) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

}  // namespace

std::string build_explain_page(const Explanation& e, const std::string& context, const ExplainPageInfo& info) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
         "script-src 'unsafe-inline'\">\n"
      << "<title>rhead explain: " << html_escape(info.question) << "</title>\n<style>" << kStyle
      << "</style></head>\n<body>\n";
  out << "<h1>Where the answer came from</h1>\n<p class=\"meta\">model " << html_escape(info.model)
      << " &middot; context " << html_escape(info.context_path) << " (" << (e.doc_end - e.doc_begin)
      << " tokens) &middot; top heads";
  for (const auto& [l, h] : e.heads) out << " " << l << "-" << h;
  out << " &middot; &tau; = " << fixed(e.tau, 2);
  if (!info.mask.empty()) out << " &middot; mask " << html_escape(info.mask);
  out << "</p>\n<h2>Question</h2>\n<p id=\"question\">" << html_escape(info.question) << "</p>\n";

  out << "<h2>Answer <span class=\"meta\">(support share " << fixed(e.support_share, 3) << ": " << e.tokens.size()
      << " tokens)</span></h2>\n<div id=\"answer\">";
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const ExplainedToken& t = e.tokens[i];
    const char* support = support_name(t.support);
    out << "<span class=\"tok " << support << "\" data-i=\"" << i << "\" tabindex=\"0\" title=\"" << support;
    if (t.support == Support::unsupported) out << ": no top head copied or attended to the document";
    out << "\">" << html_escape(t.piece) << "</span>";
  }
  out << "</div>\n<p class=\"legend meta\"><span class=\"tok copied\">copied</span><span class=\"tok "
         "attended\">attended "
         "(no copy, document mass &ge; &tau;)</span><span class=\"tok unsupported\">unsupported</span></p>\n"
      << "<div id=\"details\"></div>\n";

  // Every token's sources in plain HTML, so a printed page or a screenshot shows them without
  // hovering.
  out << "<h2>Sources of each answer token</h2>\n<table id=\"sources\"><tr><th>#</th><th>token</th><th>support</th>"
         "<th>copied from (head, weight, position, context text)</th></tr>\n";
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const ExplainedToken& t = e.tokens[i];
    out << "<tr><td>" << i << "</td><td><span class=\"tok " << support_name(t.support) << "\">" << html_escape(t.piece)
        << "</span></td><td>" << support_name(t.support) << "</td><td>";
    if (t.sources.empty()) out << "&ndash;";
    for (size_t k = 0; k < t.sources.size(); ++k) {
      const TokenSource& src = t.sources[k];
      // A few bytes either side of the source in the context.
      const int64_t n = static_cast<int64_t>(context.size());
      const int64_t b = std::max<int64_t>(0, src.char_begin - 24), en = std::min<int64_t>(n, src.char_end + 24);
      out << (k ? "<br>" : "") << src.head.key() << " " << fixed(src.weight, 3) << " @" << src.pos << ": &hellip;"
          << html_escape(context.substr(b, src.char_begin - b)) << "<mark>"
          << html_escape(context.substr(src.char_begin, src.char_end - src.char_begin)) << "</mark>"
          << html_escape(context.substr(src.char_end, en - src.char_end)) << "&hellip;";
    }
    out << "</td></tr>\n";
  }
  out << "</table>\n";

  // Positions some answer token was copied from: underlined in the context without hovering.
  std::set<int64_t> source_positions;
  for (const ExplainedToken& t : e.tokens)
    for (const TokenSource& src : t.sources) source_positions.insert(src.pos);
  out << "<h2>Context <span class=\"meta\">(underlined: copied into the answer)</span></h2>\n<div id=\"context\">";
  int64_t at = 0;
  const int64_t n = static_cast<int64_t>(context.size());
  for (size_t k = 0; k < e.document_ranges.size(); ++k) {
    const ByteRange& r = e.document_ranges[k];
    if (r.begin < at || r.end > n) continue;  // overlapping or out of range: leave to the plain text
    if (r.begin > at) out << html_escape(context.substr(at, r.begin - at));
    const int64_t pos = e.doc_begin + static_cast<int64_t>(k);
    out << "<span class=\"ctx" << (source_positions.count(pos) ? " source" : "") << "\" data-pos=\"" << pos << "\">"
        << html_escape(context.substr(r.begin, r.end - r.begin)) << "</span>";
    at = r.end;
  }
  if (at < n) out << html_escape(context.substr(at));
  out << "</div>\n";

  const std::string data = explanation_to_json(e).dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);
  out << "<script type=\"application/json\" id=\"explain-data\">" << script_safe_json(data) << "</script>\n"
      << "<script>" << kScript << "</script>\n</body></html>\n";
  return out.str();
}

}  // namespace rhead::report
