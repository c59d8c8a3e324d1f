// Helpers for report tests: running a command and capturing its output, and checking
// an SVG file with Python's XML parser (an implementation independent of ours).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/wait.h>

namespace rhead::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Parses the SVG with xml.etree; prints "<root tag> <number of text elements> <width> <height>".
inline CommandResult parse_svg(const std::string& path) {
  return run_command(
      "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
      "ns = '{http://www.w3.org/2000/svg}'; "
      "print(r.tag.replace(ns, ''), len(list(r.iter(ns + 'text'))), r.get('width'), r.get('height'))\" " +
      quoted(path));
}

}  // namespace rhead::testing

#include "test_support.h"
