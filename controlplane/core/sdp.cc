#include "controlplane/core/sdp.h"
#include "controlplane/core/str_cat.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace rtpx::sdp {
namespace {

// Error messages quote the offending input; cap it so a hostile 64 KiB line does not end up in
// the logs verbatim.
constexpr std::size_t kMaxQuotedChars = 48;
// Longest textual IPv6 address (INET6_ADDRSTRLEN - 1); anything longer cannot be valid.
constexpr std::size_t kMaxAddressChars = 45;

// RFC 8839 section 5 (plus RFC 8445 ice-mismatch, RFC 8840 end-of-candidates).
constexpr std::array<std::string_view, 9> kIceAttributeNames = {
    "candidate",   "remote-candidates", "end-of-candidates", "ice-ufrag", "ice-pwd",
    "ice-options", "ice-lite",          "ice-mismatch",      "ice-pacing"};

std::vector<std::string_view> splitOn(std::string_view text, char separator, bool skip_empty) {
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = text.find(separator, begin);
    const std::string_view part = text.substr(begin, end - begin);
    if (!part.empty() || !skip_empty) parts.push_back(part);
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  return parts;
}

std::string quote(std::string_view text) {
  const bool truncated = text.size() > kMaxQuotedChars;
  const std::string_view shown = text.substr(0, kMaxQuotedChars);
  return cat("'", absl::CHexEscape(absl::string_view(shown.data(), shown.size())),
             truncated ? "...'" : "'");
}

absl::Status lineError(std::size_t line, absl::string_view message) {
  return absl::InvalidArgumentError(cat("line ", line, ": ", message));
}

std::vector<std::string_view> splitFields(std::string_view value) {
  // RFC 8866 separates fields with a single SP; tolerate runs of spaces (and trailing spaces,
  // which some SIP devices emit) since nothing is lost: untouched lines keep their bytes anyway.
  return splitOn(value, ' ', /*skip_empty=*/true);
}

bool isDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit);
}

// Parses a decimal number in [min, max]; `what` names the field in the error message.
absl::StatusOr<std::uint64_t> parseNumber(std::string_view text, std::uint64_t min,
                                          std::uint64_t max, std::string_view what) {
  const std::string range = cat(" (", min, "-", max, ")");
  if (!isDigits(text)) {
    return absl::InvalidArgumentError(cat(what, " ", quote(text), " is not a number", range));
  }
  std::uint64_t value = 0;
  for (const char c : text) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) {
      return absl::InvalidArgumentError(cat(what, " ", quote(text), " is out of range", range));
    }
    value = value * 10 + digit;
  }
  if (value < min) {
    return absl::InvalidArgumentError(cat(what, " ", quote(text), " is out of range", range));
  }
  return value;
}

bool isValidAddress(AddressType type, std::string_view address) {
  if (address.empty() || address.size() > kMaxAddressChars) return false;
  const std::string terminated(address);  // inet_pton needs a C string
  in6_addr buffer{};
  return inet_pton(type == AddressType::kIp4 ? AF_INET : AF_INET6, terminated.c_str(), &buffer) ==
         1;
}

std::optional<AddressType> inferAddressType(std::string_view address) {
  if (isValidAddress(AddressType::kIp4, address)) return AddressType::kIp4;
  if (isValidAddress(AddressType::kIp6, address)) return AddressType::kIp6;
  return std::nullopt;
}

absl::StatusOr<AddressType> requireAddress(std::string_view address) {
  const std::optional<AddressType> type = inferAddressType(address);
  if (!type) {
    return absl::InvalidArgumentError(
        cat(quote(address), " is not a literal IPv4 or IPv6 address"));
  }
  return *type;
}

// <nettype> <addrtype> <connection-address> as used by c= (RFC 8866 section 5.7) and a=rtcp
// (RFC 3605). `what` prefixes error messages ("c=", "a=rtcp").
absl::StatusOr<Connection> parseConnectionFields(std::string_view what, std::string_view net_type,
                                                 std::string_view address_type,
                                                 std::string_view address_field) {
  if (net_type != "IN") {
    return absl::InvalidArgumentError(
        cat(what, " network type ", quote(net_type), " is not supported (only IN)"));
  }
  Connection connection;
  if (address_type == "IP4") {
    connection.address_type = AddressType::kIp4;
  } else if (address_type == "IP6") {
    connection.address_type = AddressType::kIp6;
  } else {
    return absl::InvalidArgumentError(
        cat(what, " address type ", quote(address_type), " is not supported (IP4 or IP6)"));
  }
  const bool ip4 = connection.address_type == AddressType::kIp4;
  const std::vector<std::string_view> parts = splitOn(address_field, '/', /*skip_empty=*/false);
  // RFC 8866 section 5.7: IP4 multicast is <address>/<ttl>[/<number of addresses>], IP6
  // multicast is <address>[/<number of addresses>] (no TTL).
  if (parts.size() > (ip4 ? 3U : 2U)) {
    return absl::InvalidArgumentError(
        cat(what, " address ", quote(address_field), " has too many '/' suffixes (",
            ip4 ? "IP4: <address>[/<ttl>[/<count>]]" : "IP6: <address>[/<count>]", ")"));
  }
  if (!isValidAddress(connection.address_type, parts[0])) {
    return absl::InvalidArgumentError(cat(what, " address ", quote(parts[0]), " is not a valid ",
                                          address_type,
                                          " address (a literal address is required)"));
  }
  connection.address = std::string(parts[0]);
  std::size_t next = 1;
  if (ip4 && parts.size() > next) {
    absl::StatusOr<std::uint64_t> ttl =
        parseNumber(parts[next++], 0, 255, cat(what, " multicast TTL"));
    if (!ttl.ok()) return ttl.status();
    connection.ttl = static_cast<std::uint8_t>(*ttl);
  }
  if (parts.size() > next) {
    absl::StatusOr<std::uint64_t> count =
        parseNumber(parts[next], 1, std::numeric_limits<std::uint32_t>::max(),
                    cat(what, " number of addresses"));
    if (!count.ok()) return count.status();
    connection.address_count = static_cast<std::uint32_t>(*count);
  }
  return connection;
}

absl::StatusOr<Connection> parseConnectionLine(std::string_view value) {
  const std::vector<std::string_view> fields = splitFields(value);
  if (fields.size() != 3) {
    return absl::InvalidArgumentError(
        cat("c= must be '<nettype> <addrtype> <address>' (e.g. 'IN IP4 192.0.2.1'), got ",
            fields.size(), " field(s)"));
  }
  return parseConnectionFields("c=", fields[0], fields[1], fields[2]);
}

// o= fields as views into the line, so rewrites can replace tokens in place.
absl::StatusOr<std::vector<std::string_view>> splitOrigin(std::string_view value) {
  std::vector<std::string_view> fields = splitFields(value);
  if (fields.size() != 6) {
    return absl::InvalidArgumentError(
        cat("o= must have 6 fields '<username> <sess-id> <sess-version> <nettype> <addrtype> "
            "<unicast-address>', got ",
            fields.size()));
  }
  // Only the version is checked: rtpx increments it (RFC 3264 section 8). sess-id and the
  // address are informational and vary widely in practice (hex ids, host names).
  if (!isDigits(fields[2])) {
    return absl::InvalidArgumentError(
        cat("o= session version ", quote(fields[2]), " is not a number (decimal digits)"));
  }
  return fields;
}

struct MediaLine {
  std::string_view media;
  std::string_view port_text;
  std::uint16_t port = 0;
  std::optional<std::uint32_t> port_count;
  std::string_view proto;
  std::vector<std::string_view> formats;
};

absl::StatusOr<MediaLine> parseMediaLine(std::string_view value) {
  std::vector<std::string_view> fields = splitFields(value);
  if (fields.size() < 3) {
    return absl::InvalidArgumentError(
        cat("m= must be '<media> <port>[/<number of ports>] <proto> <fmt> ...', got ",
            fields.size(), " field(s)"));
  }
  if (fields.size() == 3) {
    return absl::InvalidArgumentError(
        cat("m= has no formats (at least one <fmt> must follow the proto ", quote(fields[2]),
            ", RFC 8866 5.14)"));
  }
  MediaLine line;
  line.media = fields[0];
  const std::size_t slash = fields[1].find('/');
  line.port_text = fields[1].substr(0, slash);
  absl::StatusOr<std::uint64_t> port = parseNumber(line.port_text, 0, 65535, "m= port");
  if (!port.ok()) return port.status();
  line.port = static_cast<std::uint16_t>(*port);
  if (slash != std::string_view::npos) {
    absl::StatusOr<std::uint64_t> count =
        parseNumber(fields[1].substr(slash + 1), 1, 65535, "m= number of ports");
    if (!count.ok()) return count.status();
    line.port_count = static_cast<std::uint32_t>(*count);
  }
  line.proto = fields[2];
  line.formats.assign(fields.begin() + 3, fields.end());
  return line;
}

absl::StatusOr<Rtcp> parseRtcp(std::string_view value) {
  const std::vector<std::string_view> fields = splitFields(value);
  if (fields.size() != 1 && fields.size() != 4) {
    return absl::InvalidArgumentError(
        cat("a=rtcp must be '<port>' or '<port> IN IP4|IP6 <address>' (RFC 3605), got ",
            fields.size(), " field(s)"));
  }
  Rtcp rtcp;
  absl::StatusOr<std::uint64_t> port = parseNumber(fields[0], 0, 65535, "a=rtcp port");
  if (!port.ok()) return port.status();
  rtcp.port = static_cast<std::uint16_t>(*port);
  if (fields.size() == 4) {
    absl::StatusOr<Connection> connection =
        parseConnectionFields("a=rtcp", fields[1], fields[2], fields[3]);
    if (!connection.ok()) return connection.status();
    rtcp.connection = *std::move(connection);
  }
  return rtcp;
}

constexpr std::string_view kRtpmapForm =
    "'<payload type> <encoding name>/<clock rate>[/<channels>]'";

absl::StatusOr<Rtpmap> parseRtpmap(std::string_view value) {
  const std::vector<std::string_view> fields = splitFields(value);
  if (fields.size() != 2) {
    return absl::InvalidArgumentError(
        cat("a=rtpmap must be ", kRtpmapForm, ", got ", quote(value)));
  }
  absl::StatusOr<std::uint64_t> payload_type =
      parseNumber(fields[0], 0, 127, "a=rtpmap payload type");
  if (!payload_type.ok()) return payload_type.status();
  const std::vector<std::string_view> parts = splitOn(fields[1], '/', /*skip_empty=*/false);
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty()) {
    return absl::InvalidArgumentError(
        cat("a=rtpmap must be ", kRtpmapForm, ", got ", quote(value)));
  }
  Rtpmap rtpmap;
  rtpmap.payload_type = std::string(fields[0]);
  rtpmap.encoding_name = std::string(parts[0]);
  absl::StatusOr<std::uint64_t> clock_rate =
      parseNumber(parts[1], 1, std::numeric_limits<std::uint32_t>::max(), "a=rtpmap clock rate");
  if (!clock_rate.ok()) return clock_rate.status();
  rtpmap.clock_rate = static_cast<std::uint32_t>(*clock_rate);
  if (parts.size() == 3) {
    absl::StatusOr<std::uint64_t> channels =
        parseNumber(parts[2], 1, std::numeric_limits<std::uint32_t>::max(), "a=rtpmap channels");
    if (!channels.ok()) return channels.status();
    rtpmap.channels = static_cast<std::uint32_t>(*channels);
  }
  return rtpmap;
}

absl::StatusOr<Fmtp> parseFmtp(std::string_view value) {
  const std::size_t space = value.find(' ');
  Fmtp fmtp;
  fmtp.format = std::string(value.substr(0, space));
  if (fmtp.format.empty()) {
    return absl::InvalidArgumentError(
        cat("a=fmtp must be '<format> <format specific parameters>', got ", quote(value)));
  }
  if (space != std::string_view::npos) fmtp.parameters = std::string(value.substr(space + 1));
  return fmtp;
}

absl::StatusOr<double> parsePtime(std::string_view value) {
  // RFC 8866 section 9: ptime-value = non-zero-int-or-real (milliseconds).
  const std::size_t dot = value.find('.');
  const bool well_formed = value.size() <= 16 && isDigits(value.substr(0, dot)) &&
                           (dot == std::string_view::npos || isDigits(value.substr(dot + 1)));
  double ms = 0;
  if (well_formed) std::from_chars(value.data(), value.data() + value.size(), ms);
  if (!well_formed || ms <= 0) {
    return absl::InvalidArgumentError(cat(
        "a=ptime ", quote(value), " is not a positive number of milliseconds (e.g. 20 or 22.5)"));
  }
  return ms;
}

struct Attribute {
  std::string_view name;
  std::optional<std::string_view> value;
};

// a=<name>[:<value>] (RFC 8866 section 5.13).
std::optional<Attribute> asAttribute(const Line& line) {
  if (line.type != 'a') return std::nullopt;
  const std::string_view text = line.value;
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return Attribute{text, std::nullopt};
  return Attribute{text.substr(0, colon), text.substr(colon + 1)};
}

std::optional<Direction> directionFromName(std::string_view name) {
  if (name == "sendrecv") return Direction::kSendRecv;
  if (name == "sendonly") return Direction::kSendOnly;
  if (name == "recvonly") return Direction::kRecvOnly;
  if (name == "inactive") return Direction::kInactive;
  return std::nullopt;
}

bool isIceAttribute(std::string_view name) {
  return std::find(kIceAttributeNames.begin(), kIceAttributeNames.end(), name) !=
         kIceAttributeNames.end();
}

// Validates the attributes whose values rtpx interprets; all others are opaque.
absl::Status validateAttribute(std::string_view name, std::optional<std::string_view> value) {
  auto missing = [&](std::string_view form) {
    return absl::InvalidArgumentError(cat("a=", name, " needs a value (", form, ")"));
  };
  if (name == "rtcp") {
    if (!value) return missing("'a=rtcp:<port> [IN IP4|IP6 <address>]', RFC 3605");
    return parseRtcp(*value).status();
  }
  if (name == "rtpmap") {
    if (!value) return missing(cat("a=rtpmap:", kRtpmapForm));
    return parseRtpmap(*value).status();
  }
  if (name == "fmtp") {
    if (!value) return missing("'a=fmtp:<format> <parameters>'");
    return parseFmtp(*value).status();
  }
  if (name == "ptime") {
    if (!value) return missing("'a=ptime:<milliseconds>'");
    return parsePtime(*value).status();
  }
  if (name == "mid") {
    if (!value || value->empty()) {
      return absl::InvalidArgumentError(
          "a=mid needs a non-empty identification tag ('a=mid:<tag>', RFC 5888)");
    }
  }
  return absl::OkStatus();
}

// RFC 8866 section 9: token-char, used to validate attribute names added through the API.
bool isTokenChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x21 || u > 0x7e) return false;
  constexpr std::string_view kSeparators = "\"(),/:;<=>?@[\\]";
  return kSeparators.find(c) == std::string_view::npos;
}

std::string_view endingBytes(LineEnding ending) {
  switch (ending) {
    case LineEnding::kCrLf:
      return "\r\n";
    case LineEnding::kLf:
      return "\n";
    case LineEnding::kNone:
      break;
  }
  return "";
}

// Inserts at `pos`. Only the very last line of a description can lack a line ending; when
// appending after it, it gets the new ending and the new line inherits "no final ending", so
// the output keeps the input's style.
void insertLine(std::vector<Line>& lines, std::size_t pos, char type, std::string value,
                LineEnding ending) {
  Line line{type, std::move(value), ending};
  if (pos == lines.size() && !lines.empty() && lines.back().ending == LineEnding::kNone) {
    lines.back().ending = ending;
    line.ending = LineEnding::kNone;
  }
  lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(pos), std::move(line));
}

// Erases the lines for which predicate(index, line) is true; keeps a missing final line ending
// missing (see insertLine()).
template <typename Predicate>
void eraseLines(std::vector<Line>& lines, Predicate predicate) {
  const bool no_final_ending = !lines.empty() && lines.back().ending == LineEnding::kNone;
  std::vector<Line> kept;
  kept.reserve(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!predicate(i, lines[i])) kept.push_back(std::move(lines[i]));
  }
  lines = std::move(kept);
  if (no_final_ending && !lines.empty()) lines.back().ending = LineEnding::kNone;
}

std::optional<std::size_t> findLine(const std::vector<Line>& lines, char type) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].type == type) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> findAttribute(const std::vector<Line>& lines, std::string_view name) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::optional<Attribute> attribute = asAttribute(lines[i]);
    if (attribute && attribute->name == name) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> findDirection(const std::vector<Line>& lines) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::optional<Attribute> attribute = asAttribute(lines[i]);
    if (attribute && directionFromName(attribute->name)) return i;
  }
  return std::nullopt;
}

std::optional<Connection> firstConnection(const std::vector<Line>& lines) {
  const std::optional<std::size_t> index = findLine(lines, 'c');
  if (!index) return std::nullopt;
  return *parseConnectionLine(lines[*index].value);  // validated by parse()
}

std::optional<Direction> directionOf(const std::vector<Line>& lines) {
  const std::optional<std::size_t> index = findDirection(lines);
  if (!index) return std::nullopt;
  return directionFromName(asAttribute(lines[*index])->name);
}

IceAttributes iceOf(const std::vector<Line>& lines) {
  IceAttributes ice;
  for (const Line& line : lines) {
    const std::optional<Attribute> attribute = asAttribute(line);
    if (!attribute) continue;
    const std::string value(attribute->value.value_or(""));
    if (attribute->name == "ice-ufrag" && !ice.ufrag) {
      ice.ufrag = value;
    } else if (attribute->name == "ice-pwd" && !ice.pwd) {
      ice.pwd = value;
    } else if (attribute->name == "candidate") {
      ice.candidates.push_back(value);
    } else if (attribute->name == "end-of-candidates") {
      ice.end_of_candidates = true;
    } else if (attribute->name == "ice-lite") {
      ice.lite = true;
    }
  }
  return ice;
}

bool hasIceAttribute(const std::vector<Line>& lines) {
  return std::any_of(lines.begin(), lines.end(), [](const Line& line) {
    const std::optional<Attribute> attribute = asAttribute(line);
    return attribute && isIceAttribute(attribute->name);
  });
}

void eraseIceAttributes(std::vector<Line>& lines) {
  eraseLines(lines, [](std::size_t, const Line& line) {
    const std::optional<Attribute> attribute = asAttribute(line);
    return attribute && isIceAttribute(attribute->name);
  });
}

std::string connectionValue(AddressType type, std::string_view address) {
  return cat("IN ", addressTypeName(type), " ", address);
}

// Rewrites the first c= of `lines` and drops the others (several media-level c= lines only make
// sense for layered multicast, RFC 8866 5.7, which a unicast rewrite replaces).
void replaceConnections(std::vector<Line>& lines, std::size_t first, std::string value) {
  lines[first].value = std::move(value);
  eraseLines(lines,
             [first](std::size_t i, const Line& line) { return i > first && line.type == 'c'; });
}

// RFC 8866 section 5 orders media-level lines m= i= c= b= k= a=; a new c= goes after m=/i=.
std::size_t mediaConnectionPosition(const std::vector<Line>& lines) {
  std::size_t pos = 1;
  while (pos < lines.size() && lines[pos].type == 'i') ++pos;
  return pos;
}

std::string incrementDecimal(std::string digits) {
  for (std::size_t i = digits.size(); i-- > 0;) {
    if (digits[i] != '9') {
      ++digits[i];
      return digits;
    }
    digits[i] = '0';
  }
  digits.insert(digits.begin(), '1');
  return digits;
}

std::size_t offsetIn(std::string_view whole, std::string_view part) {
  return static_cast<std::size_t>(part.data() - whole.data());
}

void appendLines(std::string& out, const std::vector<Line>& lines) {
  for (const Line& line : lines) {
    out.push_back(line.type);
    out.push_back('=');
    out.append(line.value);
    out.append(endingBytes(line.ending));
  }
}

std::size_t serializedSize(const std::vector<Line>& lines) {
  std::size_t size = 0;
  for (const Line& line : lines) size += line.value.size() + 4;
  return size;
}

}  // namespace

std::string_view addressTypeName(AddressType type) {
  return type == AddressType::kIp4 ? "IP4" : "IP6";
}

std::string_view directionName(Direction direction) {
  switch (direction) {
    case Direction::kSendRecv:
      return "sendrecv";
    case Direction::kSendOnly:
      return "sendonly";
    case Direction::kRecvOnly:
      return "recvonly";
    case Direction::kInactive:
      return "inactive";
  }
  return "sendrecv";
}

// ---- MediaSection ----------------------------------------------------------------------------

namespace {
MediaLine mediaLineOf(const std::vector<Line>& lines) {
  return *parseMediaLine(lines.front().value);  // validated by parse()
}
}  // namespace

std::string_view MediaSection::media() const {
  return mediaLineOf(lines_).media;
}
std::uint16_t MediaSection::port() const {
  return mediaLineOf(lines_).port;
}
std::optional<std::uint32_t> MediaSection::portCount() const {
  return mediaLineOf(lines_).port_count;
}
std::string_view MediaSection::proto() const {
  return mediaLineOf(lines_).proto;
}

std::vector<std::string> MediaSection::formats() const {
  const MediaLine line = mediaLineOf(lines_);
  return {line.formats.begin(), line.formats.end()};
}

std::optional<Connection> MediaSection::connection() const {
  return firstConnection(lines_);
}

std::optional<Rtcp> MediaSection::rtcp() const {
  const std::optional<std::size_t> index = findAttribute(lines_, "rtcp");
  if (!index) return std::nullopt;
  return *parseRtcp(*asAttribute(lines_[*index])->value);
}

bool MediaSection::rtcpMux() const {
  return hasAttribute("rtcp-mux");
}

std::optional<Direction> MediaSection::direction() const {
  return directionOf(lines_);
}

std::vector<Rtpmap> MediaSection::rtpmaps() const {
  std::vector<Rtpmap> rtpmaps;
  for (const Line& line : lines_) {
    const std::optional<Attribute> attribute = asAttribute(line);
    if (attribute && attribute->name == "rtpmap")
      rtpmaps.push_back(*parseRtpmap(*attribute->value));
  }
  return rtpmaps;
}

std::optional<Rtpmap> MediaSection::rtpmap(std::string_view payload_type) const {
  for (Rtpmap& entry : rtpmaps()) {
    if (entry.payload_type == payload_type) return std::move(entry);
  }
  return std::nullopt;
}

std::vector<Fmtp> MediaSection::fmtps() const {
  std::vector<Fmtp> fmtps;
  for (const Line& line : lines_) {
    const std::optional<Attribute> attribute = asAttribute(line);
    if (attribute && attribute->name == "fmtp") fmtps.push_back(*parseFmtp(*attribute->value));
  }
  return fmtps;
}

std::vector<std::string> MediaSection::fmtp(std::string_view format) const {
  std::vector<std::string> parameters;
  for (Fmtp& entry : fmtps()) {
    if (entry.format == format) parameters.push_back(std::move(entry.parameters));
  }
  return parameters;
}

std::optional<double> MediaSection::ptime() const {
  const std::optional<std::size_t> index = findAttribute(lines_, "ptime");
  if (!index) return std::nullopt;
  return *parsePtime(*asAttribute(lines_[*index])->value);
}

std::vector<std::string> MediaSection::cryptos() const {
  return attributes("crypto");
}

IceAttributes MediaSection::ice() const {
  return iceOf(lines_);
}

bool MediaSection::hasIce() const {
  return hasIceAttribute(lines_);
}

std::optional<std::string> MediaSection::mid() const {
  const std::optional<std::size_t> index = findAttribute(lines_, "mid");
  if (!index) return std::nullopt;
  return std::string(*asAttribute(lines_[*index])->value);
}

std::vector<std::string> MediaSection::attributes(std::string_view name) const {
  std::vector<std::string> values;
  for (const Line& line : lines_) {
    const std::optional<Attribute> attribute = asAttribute(line);
    if (attribute && attribute->name == name) {
      values.emplace_back(attribute->value.value_or(""));
    }
  }
  return values;
}

bool MediaSection::hasAttribute(std::string_view name) const {
  return findAttribute(lines_, name).has_value();
}

void MediaSection::setPort(std::uint16_t port) {
  std::string& value = lines_.front().value;
  const MediaLine line = mediaLineOf(lines_);
  value.replace(offsetIn(value, line.port_text), line.port_text.size(), std::to_string(port));
}

absl::Status MediaSection::setRtcp(std::uint16_t port, std::optional<std::string_view> address) {
  std::string value = cat("rtcp:", port);
  if (address) {
    absl::StatusOr<AddressType> type = requireAddress(*address);
    if (!type.ok()) {
      return absl::InvalidArgumentError(cat("a=rtcp address ", type.status().message()));
    }
    value += cat(" ", connectionValue(*type, *address));
  }
  const std::optional<std::size_t> index = findAttribute(lines_, "rtcp");
  if (!index) {
    insertLine(lines_, lines_.size(), 'a', std::move(value), new_line_ending_);
    return absl::OkStatus();
  }
  lines_[*index].value = std::move(value);
  const std::size_t first = *index;
  eraseLines(lines_, [first](std::size_t i, const Line& line) {
    const std::optional<Attribute> attribute = asAttribute(line);
    return i > first && attribute && attribute->name == "rtcp";
  });
  return absl::OkStatus();
}

void MediaSection::removeRtcp() {
  eraseLines(lines_, [](std::size_t, const Line& line) {
    const std::optional<Attribute> attribute = asAttribute(line);
    return attribute && attribute->name == "rtcp";
  });
}

void MediaSection::setDirection(Direction direction) {
  const std::optional<std::size_t> index = findDirection(lines_);
  if (index) {
    lines_[*index].value = std::string(directionName(direction));
  } else {
    insertLine(lines_, lines_.size(), 'a', std::string(directionName(direction)), new_line_ending_);
  }
}

void MediaSection::removeIceAttributes() {
  eraseIceAttributes(lines_);
}

absl::Status MediaSection::addAttribute(std::string_view name,
                                        std::optional<std::string_view> value) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), isTokenChar)) {
    return absl::InvalidArgumentError(cat("attribute name ", quote(name),
                                          " is not a token (RFC 8866 9: visible ASCII, no ':' "
                                          "or separators)"));
  }
  if (value && value->find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        cat("attribute value ", quote(*value), " contains NUL, CR or LF"));
  }
  if (absl::Status status = validateAttribute(name, value); !status.ok()) return status;
  if (directionFromName(name) && findDirection(lines_)) {
    return absl::InvalidArgumentError(
        cat("media section already has a direction attribute; use setDirection() instead of adding "
            "a=",
            name));
  }
  std::string text(name);
  if (value) text += cat(":", *value);
  insertLine(lines_, lines_.size(), 'a', std::move(text), new_line_ending_);
  return absl::OkStatus();
}

// ---- SessionDescription ----------------------------------------------------------------------

Origin SessionDescription::origin() const {
  const std::vector<std::string_view> fields =
      *splitOrigin(session_lines_[*findLine(session_lines_, 'o')].value);
  return Origin{std::string(fields[0]), std::string(fields[1]), std::string(fields[2]),
                std::string(fields[3]), std::string(fields[4]), std::string(fields[5])};
}

std::optional<Connection> SessionDescription::connection() const {
  return firstConnection(session_lines_);
}

std::optional<Direction> SessionDescription::direction() const {
  return directionOf(session_lines_);
}

IceAttributes SessionDescription::ice() const {
  return iceOf(session_lines_);
}

std::optional<Connection> SessionDescription::effectiveConnection(std::size_t index) const {
  std::optional<Connection> connection = media_[index].connection();
  return connection ? connection : this->connection();
}

Direction SessionDescription::effectiveDirection(std::size_t index) const {
  return media_[index].direction().value_or(direction().value_or(Direction::kSendRecv));
}

absl::Status SessionDescription::setConnectionAddress(std::size_t index, std::string_view address) {
  if (index >= media_.size()) {
    return absl::OutOfRangeError(
        cat("media index ", index, " is out of range (", media_.size(), " media sections)"));
  }
  absl::StatusOr<AddressType> type = requireAddress(address);
  if (!type.ok()) return type.status();
  std::string value = connectionValue(*type, address);

  std::vector<Line>& lines = media_[index].lines_;
  if (const std::optional<std::size_t> own = findLine(lines, 'c')) {
    replaceConnections(lines, *own, std::move(value));
    return absl::OkStatus();
  }
  const std::optional<std::size_t> session = findLine(session_lines_, 'c');
  if (session) {
    if (session_lines_[*session].value == value) return absl::OkStatus();
    const bool shared = std::any_of(media_.begin(), media_.end(), [&](const MediaSection& m) {
      return &m != &media_[index] && !findLine(m.lines_, 'c');
    });
    if (!shared) {
      session_lines_[*session].value = std::move(value);
      return absl::OkStatus();
    }
  }
  insertLine(lines, mediaConnectionPosition(lines), 'c', std::move(value), new_line_ending_);
  return absl::OkStatus();
}

absl::Status SessionDescription::setAllConnectionAddresses(std::string_view address) {
  absl::StatusOr<AddressType> type = requireAddress(address);
  if (!type.ok()) return type.status();
  const std::string value = connectionValue(*type, address);
  const std::optional<std::size_t> session = findLine(session_lines_, 'c');
  if (session) session_lines_[*session].value = value;
  for (MediaSection& media : media_) {
    if (const std::optional<std::size_t> own = findLine(media.lines_, 'c')) {
      replaceConnections(media.lines_, *own, value);
    } else if (!session) {
      insertLine(media.lines_, mediaConnectionPosition(media.lines_), 'c', value, new_line_ending_);
    }
  }
  return absl::OkStatus();
}

absl::Status SessionDescription::setOriginAddress(std::string_view address, bool bump_version) {
  absl::StatusOr<AddressType> type = requireAddress(address);
  if (!type.ok()) return type.status();
  std::string& value = session_lines_[*findLine(session_lines_, 'o')].value;
  const std::vector<std::string_view> fields = *splitOrigin(value);
  // Replace "<nettype> <addrtype> <address>" in place so the rest of the line keeps its bytes.
  const std::size_t begin = offsetIn(value, fields[3]);
  const std::size_t end = offsetIn(value, fields[5]) + fields[5].size();
  value.replace(begin, end - begin, connectionValue(*type, address));
  if (bump_version) bumpSessionVersion();
  return absl::OkStatus();
}

void SessionDescription::bumpSessionVersion() {
  std::string& value = session_lines_[*findLine(session_lines_, 'o')].value;
  const std::string_view version = (*splitOrigin(value))[2];
  value.replace(offsetIn(value, version), version.size(), incrementDecimal(std::string(version)));
}

void SessionDescription::removeIceAttributes() {
  eraseIceAttributes(session_lines_);
  for (MediaSection& media : media_) media.removeIceAttributes();
}

std::string SessionDescription::serialize() const {
  std::size_t size = serializedSize(session_lines_);
  for (const MediaSection& media : media_) size += serializedSize(media.lines_);
  std::string out;
  out.reserve(size);
  appendLines(out, session_lines_);
  for (const MediaSection& media : media_) appendLines(out, media.lines_);
  out += trailer_;
  return out;
}

// ---- parse -----------------------------------------------------------------------------------

absl::StatusOr<SessionDescription> parse(std::string_view text) {
  if (text.size() > kMaxSdpBytes) {
    // Name the line where the limit is crossed; only the first kMaxSdpBytes are scanned.
    const auto line =
        1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + kMaxSdpBytes, '\n'));
    return lineError(
        line, cat("SDP is ", text.size(), " bytes, over the limit of ", kMaxSdpBytes, " bytes"));
  }
  if (text.empty()) return lineError(1, "SDP is empty (it must start with 'v=0')");

  SessionDescription sd;
  // Per section (session level, then each media section) for the "at most one direction"
  // rule of RFC 3264 section 5.1.
  std::size_t direction_line = 0;
  std::size_t session_connection_line = 0;
  struct MediaCheck {
    std::size_t line;
    std::uint16_t port;
    bool has_connection;
  };
  std::vector<MediaCheck> media_checks;
  bool saw_crlf = false;

  std::size_t pos = 0;
  std::size_t line_number = 0;
  while (pos < text.size()) {
    ++line_number;
    if (line_number > kMaxSdpLines) {
      return lineError(line_number, cat("too many lines (limit ", kMaxSdpLines, ")"));
    }
    std::size_t end = pos;
    std::size_t next = text.size();
    LineEnding ending = LineEnding::kNone;
    for (; end < text.size(); ++end) {
      const char c = text[end];
      if (c == '\0') {
        return lineError(line_number, cat("NUL byte at column ", end - pos + 1,
                                          " (SDP is text; NUL is not allowed)"));
      }
      if (c == '\n') {
        ending = LineEnding::kLf;
        next = end + 1;
        break;
      }
      if (c == '\r') {
        if (end + 1 < text.size() && text[end + 1] == '\n') {
          ending = LineEnding::kCrLf;
          next = end + 2;
          saw_crlf = true;
          break;
        }
        return lineError(line_number, cat("bare CR at column ", end - pos + 1,
                                          " (lines must end with CRLF or LF; CR is not allowed "
                                          "elsewhere)"));
      }
    }
    const std::string_view raw = text.substr(pos, end - pos);
    const std::size_t line_start = pos;
    pos = next;

    if (raw.empty()) {
      // Blank lines at the very end are common in the field (sipp, several SBCs); they carry
      // nothing, so keep them verbatim for the round trip. Anywhere else they are an error.
      const std::string_view rest = text.substr(line_start);
      if (line_number > 1 && rest.find_first_not_of("\r\n") == std::string_view::npos &&
          rest.find("\r\r") == std::string_view::npos) {
        sd.trailer_ = std::string(rest);
        break;
      }
      return lineError(line_number, "empty line (every line must be '<type>=<value>')");
    }
    if (raw.size() < 2 || raw[1] != '=' || !absl::ascii_isalpha(raw[0])) {
      return lineError(line_number,
                       cat("expected '<type>=<value>' with a one-letter type, got ", quote(raw)));
    }
    Line line{raw[0], std::string(raw.substr(2)), ending};
    const bool in_media = !sd.media_.empty();

    if (line_number == 1) {
      if (line.type != 'v' || line.value != "0") {
        return lineError(1, cat("first line must be 'v=0' (RFC 8866 5.1), got ", quote(raw)));
      }
    } else if (line_number == 2) {
      if (line.type != 'o') {
        return lineError(2, cat("second line must be the o= origin line (RFC 8866 "
                                "5.2), got ",
                                quote(raw)));
      }
      if (absl::Status status = splitOrigin(line.value).status(); !status.ok()) {
        return lineError(2, status.message());
      }
    } else {
      switch (line.type) {
        case 'v':
          return lineError(line_number, "v= may only appear once, as the first line");
        case 'o':
          return lineError(line_number, "o= may only appear once, as the second line");
        case 'm': {
          absl::StatusOr<MediaLine> media = parseMediaLine(line.value);
          if (!media.ok()) return lineError(line_number, media.status().message());
          media_checks.push_back({line_number, media->port, false});
          MediaSection section;
          section.new_line_ending_ = LineEnding::kCrLf;  // fixed up below
          sd.media_.push_back(std::move(section));
          direction_line = 0;
          break;
        }
        case 'c': {
          absl::StatusOr<Connection> connection = parseConnectionLine(line.value);
          if (!connection.ok()) return lineError(line_number, connection.status().message());
          if (in_media) {
            media_checks.back().has_connection = true;
          } else if (session_connection_line != 0) {
            return lineError(line_number, cat("second session-level c= line (the first is on line ",
                                              session_connection_line,
                                              "; at most one is allowed, RFC 8866 5.7)"));
          } else {
            session_connection_line = line_number;
          }
          break;
        }
        case 'a': {
          const Attribute attribute = *asAttribute(line);
          if (absl::Status status = validateAttribute(attribute.name, attribute.value);
              !status.ok()) {
            return lineError(line_number, status.message());
          }
          if (directionFromName(attribute.name)) {
            if (direction_line != 0) {
              return lineError(line_number,
                               cat("second direction attribute ", quote(raw),
                                   " in the same section (the first is on line ", direction_line,
                                   "; at most one of sendrecv/sendonly/recvonly/inactive, RFC 3264 "
                                   "5.1)"));
            }
            direction_line = line_number;
          }
          break;
        }
        default:
          break;  // other types (known or not) pass through untouched
      }
    }
    (sd.media_.empty() ? sd.session_lines_ : sd.media_.back().lines_).push_back(std::move(line));
  }
  if (sd.session_lines_.size() < 2) {  // lines kept, not read: a blank trailer is no o=
    return lineError(2, "missing o= origin line (an SDP starts with 'v=0' then 'o=...')");
  }
  for (const MediaCheck& check : media_checks) {
    if (check.port != 0 && !check.has_connection && session_connection_line == 0) {
      return lineError(check.line,
                       "media section has no connection address (c=) at media or session "
                       "level; one is required unless the port is 0 (RFC 8866 5.7)");
    }
  }

  sd.new_line_ending_ = saw_crlf ? LineEnding::kCrLf : LineEnding::kLf;
  for (MediaSection& media : sd.media_) media.new_line_ending_ = sd.new_line_ending_;
  return sd;
}

}  // namespace rtpx::sdp
