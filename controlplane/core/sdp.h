// SDP (RFC 8866, formerly RFC 4566) parser and rewriter for an offer/answer (RFC 3264) media
// relay.
//
// Design: the ordered list of lines is the single source of truth. Every parsed field (ports,
// connection addresses, rtpmap entries, ...) is derived from the lines on demand, and every
// rewrite edits only the lines it has to. Lines rtpx does not understand are carried through
// byte for byte, so an unmodified description serializes to exactly the bytes it was parsed
// from, including per-line CRLF/LF endings and a missing final line ending.
//
// Invariant: a SessionDescription is always valid, i.e. parse(sd.serialize()) succeeds and
// yields the same lines. The mutators validate their input to keep it that way, with two
// caveats: lines added by mutators can push a description past kMaxSdpBytes/kMaxSdpLines, and
// MediaSection::setPort() cannot see the session level, so giving a non-zero port to a section
// without any c= requires a setConnectionAddress() as well (RFC 8866 section 5.7).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtpx::sdp {

// Limits on untrusted input. SIP bodies and WebRTC offers with many candidates stay well below
// these; anything larger is far more likely an attack or a bug than a real session.
inline constexpr std::size_t kMaxSdpBytes = 64 * 1024;
inline constexpr std::size_t kMaxSdpLines = 4096;

enum class LineEnding : std::uint8_t { kNone, kLf, kCrLf };

// One "<type>=<value>" line. `value` is everything after the '=' up to (not including) the line
// ending, byte for byte.
struct Line {
  char type = 0;
  std::string value;
  LineEnding ending = LineEnding::kCrLf;

  friend bool operator==(const Line&, const Line&) = default;
};

enum class AddressType : std::uint8_t { kIp4, kIp6 };

// RFC 3264 section 5.1 / RFC 8866 section 6.7 direction attributes.
enum class Direction : std::uint8_t { kSendRecv, kSendOnly, kRecvOnly, kInactive };

// "IP4" / "IP6".
std::string_view addressTypeName(AddressType type);
// "sendrecv" / "sendonly" / "recvonly" / "inactive".
std::string_view directionName(Direction direction);

// A c= connection (RFC 8866 section 5.7); also the address part of a=rtcp (RFC 3605).
struct Connection {
  AddressType address_type = AddressType::kIp4;
  std::string address;                         // literal address, validated with inet_pton
  std::optional<std::uint8_t> ttl;             // IP4 multicast "/<ttl>"
  std::optional<std::uint32_t> address_count;  // multicast "/<number of addresses>"

  friend bool operator==(const Connection&, const Connection&) = default;
};

// The o= line (RFC 8866 section 5.2).
struct Origin {
  std::string username;
  std::string session_id;
  std::string session_version;  // decimal digits, arbitrary length
  std::string net_type;
  std::string address_type;  // kept as written; o= is informational
  std::string address;

  friend bool operator==(const Origin&, const Origin&) = default;
};

// a=rtcp (RFC 3605).
struct Rtcp {
  std::uint16_t port = 0;
  std::optional<Connection> connection;

  friend bool operator==(const Rtcp&, const Rtcp&) = default;
};

// a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]
// (RFC 8866 section 6.6).
struct Rtpmap {
  std::string payload_type;
  std::string encoding_name;
  std::uint32_t clock_rate = 0;
  std::optional<std::uint32_t> channels;

  friend bool operator==(const Rtpmap&, const Rtpmap&) = default;
};

// a=fmtp:<format> <format specific parameters> (RFC 8866 section 6.15).
struct Fmtp {
  std::string format;
  std::string parameters;

  friend bool operator==(const Fmtp&, const Fmtp&) = default;
};

// ICE attributes (RFC 8839) found in one section.
struct IceAttributes {
  std::optional<std::string> ufrag;
  std::optional<std::string> pwd;
  std::vector<std::string> candidates;  // raw a=candidate values
  bool end_of_candidates = false;
  bool lite = false;
};

class SessionDescription;
absl::StatusOr<SessionDescription> parse(std::string_view text);

// One media description: the m= line and every line up to the next m= line.
class MediaSection {
 public:
  // lines()[0] is the m= line.
  const std::vector<Line>& lines() const { return lines_; }

  // m= fields. Views point into lines() and are invalidated by any mutation.
  std::string_view media() const;  // "audio", "video", "application", ...
  std::uint16_t port() const;
  std::optional<std::uint32_t> portCount() const;  // the "/<n>" suffix of the port
  std::string_view proto() const;                  // "RTP/AVP", "UDP/TLS/RTP/SAVPF", ...
  std::vector<std::string> formats() const;        // payload types as written

  // The first media-level c= line, if any. See SessionDescription::effectiveConnection().
  std::optional<Connection> connection() const;
  std::optional<Rtcp> rtcp() const;  // the first a=rtcp
  bool rtcpMux() const;
  // The media-level direction attribute only. See SessionDescription::effectiveDirection().
  std::optional<Direction> direction() const;
  std::vector<Rtpmap> rtpmaps() const;
  std::optional<Rtpmap> rtpmap(std::string_view payload_type) const;
  std::vector<Fmtp> fmtps() const;
  std::vector<std::string> fmtp(std::string_view format) const;  // parameters of each line
  std::optional<double> ptime() const;                           // milliseconds
  std::vector<std::string> cryptos() const;                      // raw a=crypto values
  IceAttributes ice() const;
  bool hasIce() const;
  std::optional<std::string> mid() const;

  // Raw values of attributes called `name` ("a=name:value"); flags yield an empty value.
  std::vector<std::string> attributes(std::string_view name) const;
  bool hasAttribute(std::string_view name) const;

  // Rewrites the port of the m= line, keeping "/<n>", proto and formats as written. A port-0
  // section may lack a connection address; see the invariant note at the top of this file.
  void setPort(std::uint16_t port);
  // Replaces the first a=rtcp (dropping any others) or appends one. With an address, writes
  // "a=rtcp:<port> IN IP4|IP6 <address>". Fails if `address` is not a literal IPv4/IPv6 address.
  absl::Status setRtcp(std::uint16_t port, std::optional<std::string_view> address = std::nullopt);
  void removeRtcp();
  // Replaces the media-level direction attribute or appends one.
  void setDirection(Direction direction);
  // Removes a=candidate, a=remote-candidates, a=end-of-candidates, a=ice-ufrag, a=ice-pwd,
  // a=ice-options, a=ice-lite, a=ice-mismatch and a=ice-pacing.
  void removeIceAttributes();
  // Appends "a=<name>" (no value) or "a=<name>:<value>". The attribute is validated as parse()
  // would; a second direction attribute is refused (use setDirection()).
  absl::Status addAttribute(std::string_view name,
                            std::optional<std::string_view> value = std::nullopt);

 private:
  friend class SessionDescription;
  friend absl::StatusOr<SessionDescription> parse(std::string_view text);

  MediaSection() = default;

  std::vector<Line> lines_;
  LineEnding new_line_ending_ = LineEnding::kCrLf;
};

class SessionDescription {
 public:
  // Session-level lines: v=, o= and everything before the first m= line.
  const std::vector<Line>& sessionLines() const { return session_lines_; }
  Origin origin() const;
  std::optional<Connection> connection() const;  // session-level c=
  std::optional<Direction> direction() const;    // session-level direction attribute
  IceAttributes ice() const;                     // session-level ICE attributes

  std::size_t mediaCount() const { return media_.size(); }
  const std::vector<MediaSection>& mediaSections() const { return media_; }
  // Precondition: index < mediaCount().
  const MediaSection& media(std::size_t index) const { return media_[index]; }
  MediaSection& media(std::size_t index) { return media_[index]; }

  // Media-level c= if present, else session-level c= (RFC 8866 section 5.7). Only empty for
  // a section with port 0. Precondition: index < mediaCount().
  std::optional<Connection> effectiveConnection(std::size_t index) const;
  // Media-level direction, else session-level, else sendrecv (RFC 3264 section 5.1).
  // Precondition: index < mediaCount().
  Direction effectiveDirection(std::size_t index) const;

  // Line ending used for lines added by the mutators: CRLF if the input had any CRLF, else LF.
  LineEnding newLineEnding() const { return new_line_ending_; }

  // Makes the effective connection of media `index` the unicast `address` (IPv4 or IPv6,
  // "c=IN IP4|IP6 <address>"). Rewrites the media-level c= if the section has one; otherwise
  // rewrites the session-level c= if no other section depends on it; otherwise inserts a
  // media-level c= so the other sections keep their address.
  absl::Status setConnectionAddress(std::size_t index, std::string_view address);
  // Makes `address` the effective connection of every media section, rewriting the
  // session-level c= and every media-level c= (and adding media-level c= where neither exists).
  absl::Status setAllConnectionAddresses(std::string_view address);
  // Rewrites the o= nettype/addrtype/address to "IN IP4|IP6 <address>"; optionally increments
  // the session version, as RFC 3264 section 8 requires for a modified description.
  absl::Status setOriginAddress(std::string_view address, bool bump_version);
  void bumpSessionVersion();
  // Removes the ICE attributes (see MediaSection::removeIceAttributes) at session level and
  // from every media section.
  void removeIceAttributes();

  std::string serialize() const;

 private:
  friend absl::StatusOr<SessionDescription> parse(std::string_view text);

  SessionDescription() = default;

  std::vector<Line> session_lines_;
  std::vector<MediaSection> media_;
  // Blank lines after the last line, kept verbatim (see parse()).
  std::string trailer_;
  LineEnding new_line_ending_ = LineEnding::kCrLf;
};

// Parses and validates `text`. Errors are InvalidArgument with a message of the form
// "line <n>: <what is wrong> (<what is allowed>)".
absl::StatusOr<SessionDescription> parse(std::string_view text);

}  // namespace rtpx::sdp
