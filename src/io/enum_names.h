// An enum's names in one table, read both ways: the name of a value, and the value of a name
// (refused with the list of names). One table per enum replaces a switch and a parse loop.
//   constexpr EnumName<MaskMode> kMaskModes[] = {{MaskMode::uniform, "uniform"}, ...};
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "io/error.h"

namespace rhead {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The name of `value` ("?" for a value the table lacks).
template <typename E, std::size_t N>
constexpr const char* name_in(const EnumName<E> (&table)[N], E value) {
  for (const auto& e : table)
    if (e.value == value) return e.name;
  return "?";
}

// The value called `name`, if any.
template <typename E, std::size_t N>
std::optional<E> find_in(const EnumName<E> (&table)[N], std::string_view name) {
  for (const auto& e : table)
    if (name == e.name) return e.value;
  return std::nullopt;
}

// "a, b or c".
template <typename E, std::size_t N>
std::string names_in(const EnumName<E> (&table)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) out += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + table[i].name;
  return out;
}

// The value called `name`; Error "<what> 'name': expected a, b or c" otherwise.
template <typename E, std::size_t N>
E parse_in(const EnumName<E> (&table)[N], std::string_view name, const std::string& what) {
  if (auto v = find_in(table, name)) return *v;
  throw Error(what + " '" + std::string(name) + "': expected " + names_in(table));
}

}  // namespace rhead
