// Helpers for report tests: running a command and capturing its output, and checking
// an SVG file with Python's XML parser (an implementation independent of ours).
#pragma once
#include <string>

#include "test_support.h"

namespace rhead::testing {

// Runs `command` with its stdout and stderr captured together.
inline CommandResult run_with_stderr(const std::string& command) { return run_command(command + " 2>&1"); }

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Parses the SVG with xml.etree; prints "<root tag> <number of text elements> <width> <height>".
inline CommandResult parse_svg(const std::string& path) {
  return run_with_stderr(
      "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
      "ns = '{http://www.w3.org/2000/svg}'; "
      "print(r.tag.replace(ns, ''), len(list(r.iter(ns + 'text'))), r.get('width'), r.get('height'))\" " +
      quoted(path));
}

}  // namespace rhead::testing
