// libFuzzer target for the SDP parser/rewriter. SDP arrives from softswitches and browsers, i.e.
// it is untrusted input. Checked properties:
//  1. parse() never crashes and never throws;
//  2. a parsed description serializes to exactly the input bytes and re-parses to the same lines;
//  3. every accessor works on anything parse() accepted (accessors assume validated lines);
//  4. the rewrite API keeps the description valid: serialize() then parse() succeeds and yields
//     the effective values that were set.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "controlplane/core/sdp.h"

namespace {

using rtpx::sdp::Direction;
using rtpx::sdp::SessionDescription;

void check(bool condition) {
  if (!condition) std::abort();
}

bool sameLines(const SessionDescription& a, const SessionDescription& b) {
  if (a.sessionLines() != b.sessionLines() || a.mediaCount() != b.mediaCount()) return false;
  for (std::size_t i = 0; i < a.mediaCount(); ++i) {
    if (a.media(i).lines() != b.media(i).lines()) return false;
  }
  return true;
}

void touchAccessors(const SessionDescription& sd) {
  (void)sd.origin();
  (void)sd.connection();
  (void)sd.direction();
  (void)sd.ice();
  for (std::size_t i = 0; i < sd.mediaCount(); ++i) {
    const rtpx::sdp::MediaSection& media = sd.media(i);
    (void)media.media();
    (void)media.port();
    (void)media.portCount();
    (void)media.proto();
    check(!media.formats().empty());
    (void)media.connection();
    (void)media.rtcp();
    (void)media.rtcpMux();
    (void)media.direction();
    for (const rtpx::sdp::Rtpmap& rtpmap : media.rtpmaps()) {
      check(media.rtpmap(rtpmap.payload_type).has_value());
    }
    for (const rtpx::sdp::Fmtp& fmtp : media.fmtps()) check(!media.fmtp(fmtp.format).empty());
    (void)media.ptime();
    (void)media.cryptos();
    (void)media.ice();
    (void)media.hasIce();
    (void)media.mid();
    // RFC 8866 5.7: a section in use always has an address somewhere.
    check(media.port() == 0 || sd.effectiveConnection(i).has_value());
    (void)sd.effectiveDirection(i);
  }
}

// Mutations can add lines, so the result may legitimately exceed the parser's input limits.
bool withinLimits(const std::string& text) {
  std::size_t lines = 0;
  for (const char c : text) lines += c == '\n' ? 1 : 0;
  return text.size() <= rtpx::sdp::kMaxSdpBytes && lines < rtpx::sdp::kMaxSdpLines;
}

void checkRelayRewrite(SessionDescription sd) {
  sd.removeIceAttributes();
  check(sd.setAllConnectionAddresses("203.0.113.1").ok());
  for (std::size_t i = 0; i < sd.mediaCount(); ++i) {
    sd.media(i).setPort(40000);
    check(sd.media(i).setRtcp(40001, "203.0.113.1").ok());
    sd.media(i).setDirection(Direction::kSendRecv);
  }
  check(sd.setOriginAddress("2001:db8::1", /*bump_version=*/true).ok());
  const std::string text = sd.serialize();
  if (!withinLimits(text)) return;
  absl::StatusOr<SessionDescription> reparsed = rtpx::sdp::parse(text);
  check(reparsed.ok());
  check(sameLines(*reparsed, sd));
  check(!reparsed->ice().ufrag.has_value());
  for (std::size_t i = 0; i < reparsed->mediaCount(); ++i) {
    check(reparsed->effectiveConnection(i)->address == "203.0.113.1");
    check(reparsed->media(i).port() == 40000);
    check(reparsed->media(i).rtcp()->port == 40001);
    check(reparsed->effectiveDirection(i) == Direction::kSendRecv);
    check(!reparsed->media(i).hasIce());
  }
}

void checkPerMediaConnections(SessionDescription sd) {
  auto addressFor = [](std::size_t i) { return i % 2 == 0 ? "198.51.100.2" : "2001:db8::2"; };
  for (std::size_t i = 0; i < sd.mediaCount(); ++i) {
    check(sd.setConnectionAddress(i, addressFor(i)).ok());
  }
  const std::string text = sd.serialize();
  if (!withinLimits(text)) return;
  absl::StatusOr<SessionDescription> reparsed = rtpx::sdp::parse(text);
  check(reparsed.ok());
  for (std::size_t i = 0; i < reparsed->mediaCount(); ++i) {
    check(reparsed->effectiveConnection(i)->address == addressFor(i));
  }
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): name fixed by libFuzzer.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<SessionDescription> sd = rtpx::sdp::parse(input);
  if (!sd.ok()) {
    check(sd.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  const std::string text = sd->serialize();
  check(text == input);
  absl::StatusOr<SessionDescription> again = rtpx::sdp::parse(text);
  check(again.ok());
  check(again->serialize() == text);
  check(sameLines(*sd, *again));

  touchAccessors(*sd);
  checkRelayRewrite(*sd);
  checkPerMediaConnections(*sd);
  return 0;
}
