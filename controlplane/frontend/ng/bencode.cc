#include "controlplane/frontend/ng/bencode.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <system_error>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "controlplane/core/str_cat.h"

namespace rtpx::ng::bencode {
namespace {

using Entry = Dict::value_type;

// The entries encode() writes and operator== compares: sorted by key bytes (std::string
// compares as unsigned bytes, which is bencode's order), the first of equal keys only.
std::vector<const Entry*> canonicalEntries(const Dict& d) {
  std::vector<const Entry*> out;
  out.reserve(d.size());
  for (const Entry& e : d) out.push_back(&e);
  std::stable_sort(out.begin(), out.end(),
                   [](const Entry* a, const Entry* b) { return a->first < b->first; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Entry* a, const Entry* b) { return a->first == b->first; }),
            out.end());
  return out;
}

// A key for an error message: escaped, and cut short, since a hostile key can be 64 KiB.
std::string quoteKey(std::string_view key) {
  constexpr std::size_t kShown = 32;
  std::string out =
      "\"" + absl::CHexEscape(absl::string_view(key.data(), std::min(key.size(), kShown))) + "\"";
  if (key.size() > kShown) out += "...";
  return out;
}

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  absl::StatusOr<Value> document() {
    Value v;
    if (!value(0, v)) return std::move(error_);
    if (pos_ != in_.size()) {
      fail("trailing bytes after the value");
      return std::move(error_);
    }
    return v;
  }

 private:
  // The keys of one dictionary so far, as views into the input. A scan while there are few; a
  // hash set once there are many, so a dictionary of kMaxValues entries costs O(n), not O(n^2).
  class KeySet {
   public:
    // False when `key` is already in the set.
    bool insert(std::string_view key) {
      if (few_.size() < kFew) {
        if (std::find(few_.begin(), few_.end(), key) != few_.end()) return false;
        few_.push_back(key);
        return true;
      }
      if (many_.empty()) many_.insert(few_.begin(), few_.end());
      return many_.insert(key).second;
    }

   private:
    static constexpr std::size_t kFew = 16;
    std::vector<std::string_view> few_;
    std::unordered_set<std::string_view> many_;
  };

  // Every reader returns false after recording the error at pos_ (or `at`).
  bool fail(std::string_view what) { return failAt(pos_, what); }
  bool failAt(std::size_t at, std::string_view what) {
    error_ = absl::InvalidArgumentError(cat("bencode: ", what, " at offset ", at));
    return false;
  }

  bool peek(char& c) {
    if (pos_ >= in_.size()) return fail("unexpected end of input");
    c = in_[pos_];
    return true;
  }

  // Digits from pos_ up to `end`, which is consumed: no sign, no leading zero unless the number
  // is 0, at least one digit.
  bool digits(char end, std::uint64_t& n) {
    const std::size_t start = pos_;
    const std::size_t stop = in_.find(end, pos_);
    if (stop == std::string_view::npos)
      return fail(cat("missing '", std::string_view(&end, 1), "'"));
    if (stop == start) return fail("empty number");
    for (std::size_t i = start; i < stop; ++i) {
      if (in_[i] < '0' || in_[i] > '9') return failAt(i, "not a digit");
    }
    if (in_[start] == '0' && stop - start > 1) return fail("leading zero");
    const auto [p, ec] = std::from_chars(in_.data() + start, in_.data() + stop, n);
    if (ec != std::errc() || p != in_.data() + stop) return fail("number out of range");
    pos_ = stop + 1;
    return true;
  }

  // "<length>:<bytes>"; the result is a view into the input.
  bool string(std::string_view& s) {
    std::uint64_t len = 0;
    if (!digits(':', len)) return false;
    if (len > in_.size() - pos_) return fail("string runs past the end of input");
    s = in_.substr(pos_, len);
    pos_ += len;
    return true;
  }

  // "i<digits>e" or "i-<digits>e".
  bool integer(std::int64_t& i) {
    ++pos_;  // 'i'
    bool negative = false;
    char c = 0;
    if (!peek(c)) return false;
    if (c == '-') {
      negative = true;
      ++pos_;
      if (!peek(c)) return false;
      if (c == '0') return fail("negative zero");
    }
    const std::size_t start = pos_;
    std::uint64_t magnitude = 0;
    if (!digits('e', magnitude)) return false;
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (magnitude > kMax + (negative ? 1 : 0)) return failAt(start, "integer out of range");
    if (!negative) {
      i = static_cast<std::int64_t>(magnitude);
    } else {
      i = magnitude == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                                : -static_cast<std::int64_t>(magnitude);
    }
    return true;
  }

  bool value(int depth, Value& out) {
    if (++values_ > kMaxValues) return fail(cat("more than ", kMaxValues, " values"));
    char c = 0;
    if (!peek(c)) return false;
    if (c == 'i') {
      std::int64_t i = 0;
      if (!integer(i)) return false;
      out = Value(i);
      return true;
    }
    if (c >= '0' && c <= '9') {
      std::string_view s;
      if (!string(s)) return false;
      out = Value(s);
      return true;
    }
    if (c == 'l' || c == 'd') {
      if (depth >= kMaxDepth) {
        return fail(cat("nested more than ", kMaxDepth, " deep"));
      }
      ++pos_;
      return c == 'l' ? list(depth, out) : dict(depth, out);
    }
    constexpr char kHex[] = "0123456789abcdef";
    const auto byte = static_cast<unsigned char>(c);
    const char hex[2] = {kHex[byte >> 4], kHex[byte & 0xf]};
    return fail(cat("unexpected byte 0x", std::string_view(hex, 2)));
  }

  // After the 'l'.
  bool list(int depth, Value& out) {
    List l;
    char c = 0;
    for (;;) {
      if (!peek(c)) return false;
      if (c == 'e') break;
      l.emplace_back();
      if (!value(depth + 1, l.back())) return false;
    }
    ++pos_;
    out = Value(std::move(l));
    return true;
  }

  // After the 'd'.
  bool dict(int depth, Value& out) {
    Dict d;
    KeySet keys;
    char c = 0;
    for (;;) {
      if (!peek(c)) return false;
      if (c == 'e') break;
      if (c < '0' || c > '9') return fail("dictionary key is not a string");
      const std::size_t key_at = pos_;
      std::string_view key;
      if (!string(key)) return false;
      if (!keys.insert(key)) {
        return failAt(key_at, cat("duplicate dictionary key ", quoteKey(key)));
      }
      d.emplace_back(std::string(key), Value());
      if (!value(depth + 1, d.back().second)) return false;
    }
    ++pos_;
    out = Value(std::move(d));
    return true;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
  absl::Status error_;
};

}  // namespace

std::optional<std::int64_t> Value::integer() const {
  if (const auto* p = std::get_if<std::int64_t>(&v_)) return *p;
  return std::nullopt;
}

const Value* Value::find(std::string_view key) const {
  const Dict* d = dict();
  return d == nullptr ? nullptr : bencode::find(*d, key);
}

bool operator==(const Value& a, const Value& b) {
  if (a.v_.index() != b.v_.index()) return false;
  if (!a.isDict()) return a.v_ == b.v_;
  const std::vector<const Entry*> ea = canonicalEntries(*a.dict());
  const std::vector<const Entry*> eb = canonicalEntries(*b.dict());
  return std::equal(ea.begin(), ea.end(), eb.begin(), eb.end(),
                    [](const Entry* x, const Entry* y) { return *x == *y; });
}

const Value* find(const Dict& d, std::string_view key) {
  for (const auto& [k, v] : d) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value& set(Dict& d, std::string key, Value v) {
  for (auto& [k, existing] : d) {
    if (k == key) return existing = std::move(v);
  }
  return d.emplace_back(std::move(key), std::move(v)).second;
}

namespace {

void appendString(std::string_view s, std::string& out) {
  absl::StrAppend(&out, s.size(), ":");
  out.append(s);
}

}  // namespace

void encodeTo(const Value& v, std::string& out) {
  if (const std::string* s = v.str()) {
    appendString(*s, out);
  } else if (const std::optional<std::int64_t> i = v.integer()) {
    absl::StrAppend(&out, "i", *i, "e");
  } else if (const List* l = v.list()) {
    out += 'l';
    for (const Value& x : *l) encodeTo(x, out);
    out += 'e';
  } else {
    out += 'd';
    for (const Entry* e : canonicalEntries(*v.dict())) {
      appendString(e->first, out);
      encodeTo(e->second, out);
    }
    out += 'e';
  }
}

std::string encode(const Value& v) {
  std::string out;
  encodeTo(v, out);
  return out;
}

absl::StatusOr<Value> decode(std::string_view in) {
  return Decoder(in).document();
}

}  // namespace rtpx::ng::bencode
