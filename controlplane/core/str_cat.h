// String concatenation over std::string_view. Debian 12's abseil is built with its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0), so absl::StrCat does not take
// std::string_view; this takes both, plus strings, C strings and integers.
#pragma once

#include <absl/strings/string_view.h>

#include <string>
#include <string_view>
#include <type_traits>

namespace rtpx {
namespace str_cat_detail {

inline void appendPiece(std::string& out, std::string_view piece) {
  out.append(piece);
}
inline void appendPiece(std::string& out, absl::string_view piece) {
  out.append(piece.data(), piece.size());
}
inline void appendPiece(std::string& out, const std::string& piece) {
  out.append(piece);
}
inline void appendPiece(std::string& out, const char* piece) {
  out.append(piece);
}
template <typename T>
requires std::is_integral_v<T>
void appendPiece(std::string& out, T number) {
  out.append(std::to_string(number));
}

}  // namespace str_cat_detail

template <typename... Pieces>
std::string cat(const Pieces&... pieces) {
  std::string out;
  (str_cat_detail::appendPiece(out, pieces), ...);
  return out;
}

}  // namespace rtpx
