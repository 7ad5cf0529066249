#include "controlplane/core/sdp.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace rtpx::sdp {
namespace {

// Test inputs are written with '\n' for readability; real SIP bodies use CRLF.
std::string crlf(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

SessionDescription parseOk(std::string_view text) {
  absl::StatusOr<SessionDescription> sd = parse(text);
  INFO(sd.status().ToString());
  REQUIRE(sd.ok());
  return *std::move(sd);
}

std::string parseError(std::string_view text) {
  absl::StatusOr<SessionDescription> sd = parse(text);
  REQUIRE_FALSE(sd.ok());
  CHECK(sd.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(sd.status().message());
}

// Drops every line whose text starts with one of `prefixes` (line endings are CRLF).
std::string withoutLines(const std::string& text, const std::vector<std::string>& prefixes) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    const std::string line = text.substr(pos, end - pos);
    const bool drop = std::any_of(prefixes.begin(), prefixes.end(),
                                  [&](const std::string& p) { return line.rfind(p, 0) == 0; });
    if (!drop) out += line;
    pos = end;
  }
  return out;
}

// A desk phone offer: SDES-SRTP audio plus video, session-level c= shared by both sections.
const std::string kSipOffer = crlf(
    "v=0\n"
    "o=- 20518 0 IN IP4 203.0.113.50\n"
    "s=SDP data\n"
    "c=IN IP4 203.0.113.50\n"
    "t=0 0\n"
    "m=audio 11780 RTP/SAVP 0 8 9 18 101\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:9 G722/8000\n"
    "a=rtpmap:18 G729/8000\n"
    "a=fmtp:18 annexb=no\n"
    "a=ptime:20\n"
    "a=sendrecv\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "m=video 11782 RTP/AVP 99 97\n"
    "b=TIAS:2000000\n"
    "a=rtpmap:99 H264/90000\n"
    "a=fmtp:99 profile-level-id=42801F; packetization-mode=0\n"
    "a=rtpmap:97 H264/90000\n"
    "a=fmtp:97 profile-level-id=42801F; packetization-mode=1\n"
    "a=content:main\n"
    "a=rtcp-fb:* nack pli\n"
    "a=sendrecv\n");

// A Chrome-style WebRTC offer: BUNDLE, trickle ICE, DTLS-SRTP, rtcp-mux, audio+video+data.
const std::string kWebRtcOffer = crlf(
    "v=0\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\n"
    "s=-\n"
    "t=0 0\n"
    "a=group:BUNDLE 0 1 2\n"
    "a=extmap-allow-mixed\n"
    "a=msid-semantic: WMS stream1\n"
    "m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\n"
    "c=IN IP4 198.51.100.7\n"
    "a=rtcp:9 IN IP4 0.0.0.0\n"
    "a=candidate:2999745851 1 udp 2122260223 192.168.1.20 54400 typ host generation 0 "
    "network-id 1\n"
    "a=candidate:1190117839 1 udp 1686052607 198.51.100.7 54400 typ srflx raddr 192.168.1.20 "
    "rport 54400 generation 0 network-id 1\n"
    "a=candidate:4233069003 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active "
    "generation 0 network-id 1\n"
    "a=ice-ufrag:Jk7b\n"
    "a=ice-pwd:ZsSgTxlqkdr0h9VAbbRvgn4A\n"
    "a=ice-options:trickle\n"
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:"
    "C2:43:F0:A1:58:D0:A1:2C:19:08\n"
    "a=setup:actpass\n"
    "a=mid:0\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\n"
    "a=sendrecv\n"
    "a=msid:stream1 track-audio\n"
    "a=rtcp-mux\n"
    "a=rtpmap:111 opus/48000/2\n"
    "a=rtcp-fb:111 transport-cc\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\n"
    "a=rtpmap:63 red/48000/2\n"
    "a=fmtp:63 111/111\n"
    "a=rtpmap:9 G722/8000\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:13 CN/8000\n"
    "a=rtpmap:110 telephone-event/48000\n"
    "a=rtpmap:126 telephone-event/8000\n"
    "a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6\n"
    "a=ssrc:3570614608 msid:stream1 track-audio\n"
    "m=video 54400 UDP/TLS/RTP/SAVPF 96 97 102 103\n"
    "c=IN IP4 198.51.100.7\n"
    "a=rtcp:9 IN IP4 0.0.0.0\n"
    "a=candidate:2999745851 1 udp 2122260223 192.168.1.20 54400 typ host generation 0 "
    "network-id 1\n"
    "a=ice-ufrag:Jk7b\n"
    "a=ice-pwd:ZsSgTxlqkdr0h9VAbbRvgn4A\n"
    "a=ice-options:trickle\n"
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:"
    "C2:43:F0:A1:58:D0:A1:2C:19:08\n"
    "a=setup:actpass\n"
    "a=mid:1\n"
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\n"
    "a=extmap:13 urn:3gpp:video-orientation\n"
    "a=sendrecv\n"
    "a=msid:stream1 track-video\n"
    "a=rtcp-mux\n"
    "a=rtcp-rsize\n"
    "a=rtpmap:96 VP8/90000\n"
    "a=rtcp-fb:96 goog-remb\n"
    "a=rtcp-fb:96 transport-cc\n"
    "a=rtcp-fb:96 ccm fir\n"
    "a=rtcp-fb:96 nack\n"
    "a=rtcp-fb:96 nack pli\n"
    "a=rtpmap:97 rtx/90000\n"
    "a=fmtp:97 apt=96\n"
    "a=rtpmap:102 H264/90000\n"
    "a=rtcp-fb:102 nack pli\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\n"
    "a=rtpmap:103 rtx/90000\n"
    "a=fmtp:103 apt=102\n"
    "a=ssrc-group:FID 2231627014 632943048\n"
    "a=ssrc:2231627014 cname:4TOk42mSjXCkVIa6\n"
    "a=ssrc:632943048 cname:4TOk42mSjXCkVIa6\n"
    "m=application 54400 UDP/DTLS/SCTP webrtc-datachannel\n"
    "c=IN IP4 198.51.100.7\n"
    "a=candidate:2999745851 1 udp 2122260223 192.168.1.20 54400 typ host generation 0 "
    "network-id 1\n"
    "a=ice-ufrag:Jk7b\n"
    "a=ice-pwd:ZsSgTxlqkdr0h9VAbbRvgn4A\n"
    "a=ice-options:trickle\n"
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:"
    "C2:43:F0:A1:58:D0:A1:2C:19:08\n"
    "a=setup:actpass\n"
    "a=mid:2\n"
    "a=sctp-port:5000\n"
    "a=max-message-size:262144\n");

// Lines 1-6 of a minimal valid offer; line 6 is the m= line.
const std::string kMinimal = crlf(
    "v=0\n"
    "o=- 1 1 IN IP4 192.0.2.1\n"
    "s=-\n"
    "c=IN IP4 192.0.2.1\n"
    "t=0 0\n"
    "m=audio 4000 RTP/AVP 0\n");

TEST_CASE("SIP phone offer round-trips byte for byte and exposes its fields", "[sdp]") {
  const SessionDescription sd = parseOk(kSipOffer);
  CHECK(sd.serialize() == kSipOffer);

  CHECK(sd.origin() == Origin{"-", "20518", "0", "IN", "IP4", "203.0.113.50"});
  REQUIRE(sd.connection().has_value());
  CHECK(sd.connection()->address_type == AddressType::kIp4);
  CHECK(sd.connection()->address == "203.0.113.50");
  CHECK(sd.newLineEnding() == LineEnding::kCrLf);
  REQUIRE(sd.mediaCount() == 2);

  const MediaSection& audio = sd.media(0);
  CHECK(audio.media() == "audio");
  CHECK(audio.port() == 11780);
  CHECK_FALSE(audio.portCount().has_value());
  CHECK(audio.proto() == "RTP/SAVP");
  CHECK(audio.formats() == std::vector<std::string>{"0", "8", "9", "18", "101"});
  CHECK_FALSE(audio.connection().has_value());
  CHECK(sd.effectiveConnection(0) == sd.connection());
  CHECK(audio.direction() == Direction::kSendRecv);
  CHECK(audio.ptime() == 20.0);
  CHECK(audio.rtpmaps().size() == 5);
  CHECK(audio.rtpmap("18") == Rtpmap{"18", "G729", 8000, std::nullopt});
  CHECK(audio.rtpmap("101") == Rtpmap{"101", "telephone-event", 8000, std::nullopt});
  CHECK_FALSE(audio.rtpmap("96").has_value());
  CHECK(audio.fmtp("18") == std::vector<std::string>{"annexb=no"});
  CHECK(audio.fmtp("101") == std::vector<std::string>{"0-15"});
  CHECK(audio.cryptos() ==
        std::vector<std::string>{
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
            "2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4"});
  CHECK_FALSE(audio.rtcp().has_value());
  CHECK_FALSE(audio.rtcpMux());
  CHECK_FALSE(audio.hasIce());
  CHECK_FALSE(audio.mid().has_value());

  const MediaSection& video = sd.media(1);
  CHECK(video.media() == "video");
  CHECK(video.port() == 11782);
  CHECK(video.proto() == "RTP/AVP");
  CHECK(video.formats() == std::vector<std::string>{"99", "97"});
  CHECK(video.fmtp("99") ==
        std::vector<std::string>{"profile-level-id=42801F; packetization-mode=0"});
  CHECK(video.attributes("content") == std::vector<std::string>{"main"});
  CHECK(video.lines()[1] == Line{'b', "TIAS:2000000", LineEnding::kCrLf});
  CHECK(sd.effectiveDirection(1) == Direction::kSendRecv);
}

TEST_CASE("WebRTC offer round-trips byte for byte and exposes ICE/BUNDLE fields", "[sdp]") {
  const SessionDescription sd = parseOk(kWebRtcOffer);
  CHECK(sd.serialize() == kWebRtcOffer);
  CHECK_FALSE(sd.connection().has_value());
  CHECK(sd.origin().session_id == "4611731400430051336");
  CHECK(sd.sessionLines()[4] == Line{'a', "group:BUNDLE 0 1 2", LineEnding::kCrLf});
  CHECK(sd.sessionLines()[6] == Line{'a', "msid-semantic: WMS stream1", LineEnding::kCrLf});
  REQUIRE(sd.mediaCount() == 3);

  const MediaSection& audio = sd.media(0);
  CHECK(audio.proto() == "UDP/TLS/RTP/SAVPF");
  CHECK(audio.formats() ==
        std::vector<std::string>{"111", "63", "9", "0", "8", "13", "110", "126"});
  CHECK(audio.rtcpMux());
  REQUIRE(audio.rtcp().has_value());
  CHECK(audio.rtcp()->port == 9);
  REQUIRE(audio.rtcp()->connection.has_value());
  CHECK(audio.rtcp()->connection->address == "0.0.0.0");
  CHECK(audio.rtpmap("111") == Rtpmap{"111", "opus", 48000, 2U});
  CHECK(audio.fmtp("111") == std::vector<std::string>{"minptime=10;useinbandfec=1"});
  CHECK(audio.mid() == "0");
  CHECK(audio.hasIce());
  const IceAttributes ice = audio.ice();
  CHECK(ice.ufrag == "Jk7b");
  CHECK(ice.pwd == "ZsSgTxlqkdr0h9VAbbRvgn4A");
  REQUIRE(ice.candidates.size() == 3);
  CHECK(ice.candidates[2] ==
        "4233069003 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active generation 0 "
        "network-id 1");
  CHECK(sd.effectiveConnection(0)->address == "198.51.100.7");

  const MediaSection& video = sd.media(1);
  CHECK(video.rtpmap("102") == Rtpmap{"102", "H264", 90000, std::nullopt});
  CHECK(video.fmtp("103") == std::vector<std::string>{"apt=102"});
  CHECK(video.mid() == "1");
  CHECK(video.hasAttribute("rtcp-rsize"));

  const MediaSection& data = sd.media(2);
  CHECK(data.media() == "application");
  CHECK(data.proto() == "UDP/DTLS/SCTP");
  CHECK(data.formats() == std::vector<std::string>{"webrtc-datachannel"});
  CHECK(data.attributes("sctp-port") == std::vector<std::string>{"5000"});
  CHECK(data.rtpmaps().empty());
}

TEST_CASE("relaying a WebRTC offer: ICE removed everywhere, addresses and ports rewritten",
          "[sdp][rewrite]") {
  SessionDescription sd = parseOk(kWebRtcOffer);
  sd.removeIceAttributes();
  REQUIRE(sd.setAllConnectionAddresses("203.0.113.5").ok());
  for (std::size_t i = 0; i < sd.mediaCount(); ++i) sd.media(i).setPort(40000);

  std::string expected =
      withoutLines(kWebRtcOffer, {"a=candidate:", "a=ice-ufrag:", "a=ice-pwd:", "a=ice-options:"});
  for (std::size_t pos = 0;
       (pos = expected.find("c=IN IP4 198.51.100.7", pos)) != std::string::npos;) {
    expected.replace(pos, 21, "c=IN IP4 203.0.113.5");
  }
  for (std::size_t pos = 0; (pos = expected.find(" 54400 ", pos)) != std::string::npos;) {
    expected.replace(pos, 7, " 40000 ");
  }
  CHECK(sd.serialize() == expected);
  CHECK(expected.find("a=candidate") == std::string::npos);
  CHECK(expected.find("m=audio 40000 UDP/TLS/RTP/SAVPF 111 63") != std::string::npos);
  for (std::size_t i = 0; i < sd.mediaCount(); ++i) CHECK_FALSE(sd.media(i).hasIce());
  // The fingerprint and setup attributes are not ICE and must stay.
  CHECK(sd.media(0).attributes("setup") == std::vector<std::string>{"actpass"});
}

TEST_CASE("relaying a SIP offer: exact rewritten output", "[sdp][rewrite]") {
  SessionDescription sd = parseOk(kSipOffer);
  REQUIRE(sd.setAllConnectionAddresses("198.51.100.1").ok());
  sd.media(0).setPort(30000);
  sd.media(1).setPort(30002);
  REQUIRE(sd.media(0).setRtcp(30001, "198.51.100.1").ok());
  REQUIRE(sd.setOriginAddress("198.51.100.1", /*bump_version=*/true).ok());

  const std::string expected = crlf(
      "v=0\n"
      "o=- 20518 1 IN IP4 198.51.100.1\n"
      "s=SDP data\n"
      "c=IN IP4 198.51.100.1\n"
      "t=0 0\n"
      "m=audio 30000 RTP/SAVP 0 8 9 18 101\n"
      "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
      "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\n"
      "a=crypto:2 AES_CM_128_HMAC_SHA1_32 "
      "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4\n"
      "a=rtpmap:0 PCMU/8000\n"
      "a=rtpmap:8 PCMA/8000\n"
      "a=rtpmap:9 G722/8000\n"
      "a=rtpmap:18 G729/8000\n"
      "a=fmtp:18 annexb=no\n"
      "a=ptime:20\n"
      "a=sendrecv\n"
      "a=rtpmap:101 telephone-event/8000\n"
      "a=fmtp:101 0-15\n"
      "a=rtcp:30001 IN IP4 198.51.100.1\n"
      "m=video 30002 RTP/AVP 99 97\n"
      "b=TIAS:2000000\n"
      "a=rtpmap:99 H264/90000\n"
      "a=fmtp:99 profile-level-id=42801F; packetization-mode=0\n"
      "a=rtpmap:97 H264/90000\n"
      "a=fmtp:97 profile-level-id=42801F; packetization-mode=1\n"
      "a=content:main\n"
      "a=rtcp-fb:* nack pli\n"
      "a=sendrecv\n");
  CHECK(sd.serialize() == expected);

  const SessionDescription reparsed = parseOk(sd.serialize());
  CHECK(reparsed.serialize() == expected);
  CHECK(reparsed.media(0).rtcp() ==
        Rtcp{30001, Connection{AddressType::kIp4, "198.51.100.1", std::nullopt, std::nullopt}});
}

TEST_CASE("unknown attributes and unknown line types pass through unchanged", "[sdp]") {
  const std::string text = crlf(
      "v=0\n"
      "o=alice 2890844526 2890844526 IN IP4 host.example.com\n"
      "s=Session \xc3\xa9t\xc3\xa9 with UTF-8\n"
      "x=vendor extension line\n"
      "c=IN IP4 192.0.2.10\n"
      "t=0 0\n"
      "a=X-nat:0\n"
      "m=audio 4000 RTP/AVP 0 96\n"
      "i=an i= line\n"
      "Q=uppercase type letter\n"
      "a=weird-attr:  two  spaces  and trailing space \n"
      "a=\n"
      "a=:empty-name\n"
      "a=rtpmap:96 L16/16000/2\n"
      "y=\n");
  const SessionDescription sd = parseOk(text);
  CHECK(sd.serialize() == text);
  CHECK(sd.origin().address == "host.example.com");
  CHECK(sd.sessionLines()[3] == Line{'x', "vendor extension line", LineEnding::kCrLf});
  CHECK(sd.media(0).attributes("weird-attr") ==
        std::vector<std::string>{"  two  spaces  and trailing space "});
  CHECK(sd.media(0).rtpmap("96") == Rtpmap{"96", "L16", 16000, 2U});
  CHECK(sd.media(0).lines().back() == Line{'y', "", LineEnding::kCrLf});

  // A rewrite elsewhere leaves the unknown lines untouched.
  SessionDescription rewritten = sd;
  rewritten.media(0).setPort(5000);
  std::string expected = text;
  expected.replace(expected.find("m=audio 4000"), 12, "m=audio 5000");
  CHECK(rewritten.serialize() == expected);
}

TEST_CASE("LF-only input, mixed endings and a missing final line ending", "[sdp]") {
  const std::string lf =
      "v=0\n"
      "o=- 7 7 IN IP4 192.0.2.1\n"
      "s=-\n"
      "c=IN IP4 192.0.2.1\n"
      "t=0 0\n"
      "m=audio 4000 RTP/AVP 0\n"
      "a=rtpmap:0 PCMU/8000";  // no final line ending
  SessionDescription sd = parseOk(lf);
  CHECK(sd.serialize() == lf);
  CHECK(sd.newLineEnding() == LineEnding::kLf);
  CHECK(sd.media(0).lines().back().ending == LineEnding::kNone);

  // New lines use LF; the description still ends without a line ending.
  REQUIRE(sd.media(0).addAttribute("ptime", "20").ok());
  sd.media(0).setDirection(Direction::kSendOnly);
  CHECK(sd.serialize() ==
        "v=0\n"
        "o=- 7 7 IN IP4 192.0.2.1\n"
        "s=-\n"
        "c=IN IP4 192.0.2.1\n"
        "t=0 0\n"
        "m=audio 4000 RTP/AVP 0\n"
        "a=rtpmap:0 PCMU/8000\n"
        "a=ptime:20\n"
        "a=sendonly");
  // Removing the last line keeps the "no final line ending" style.
  sd.media(0).setDirection(Direction::kSendOnly);
  REQUIRE(sd.media(0).addAttribute("candidate", "1 1 udp 1 192.0.2.1 4000 typ host").ok());
  sd.media(0).removeIceAttributes();
  CHECK(sd.serialize() ==
        "v=0\n"
        "o=- 7 7 IN IP4 192.0.2.1\n"
        "s=-\n"
        "c=IN IP4 192.0.2.1\n"
        "t=0 0\n"
        "m=audio 4000 RTP/AVP 0\n"
        "a=rtpmap:0 PCMU/8000\n"
        "a=ptime:20\n"
        "a=sendonly");

  // Mixed endings are remembered per line; any CRLF makes new lines CRLF.
  const std::string mixed =
      "v=0\r\n"
      "o=- 7 7 IN IP4 192.0.2.1\n"
      "s=-\r\n"
      "c=IN IP4 192.0.2.1\n"
      "t=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\n";
  SessionDescription mixed_sd = parseOk(mixed);
  CHECK(mixed_sd.serialize() == mixed);
  CHECK(mixed_sd.newLineEnding() == LineEnding::kCrLf);
  REQUIRE(mixed_sd.media(0).addAttribute("rtcp-mux").ok());
  CHECK(mixed_sd.serialize() == mixed + "a=rtcp-mux\r\n");
}

TEST_CASE("IPv4, IPv6 and multicast connection addresses", "[sdp]") {
  const std::string text = crlf(
      "v=0\n"
      "o=- 1 1 IN IP6 2001:db8::10\n"
      "s=-\n"
      "c=IN IP6 2001:db8::10\n"
      "t=0 0\n"
      "m=audio 4000 RTP/AVP 0\n"
      "m=audio 4002 RTP/AVP 0\n"
      "c=IN IP4 224.2.1.1/127/3\n"
      "m=video 4004/2 RTP/AVP 31\n"
      "c=IN IP6 ff15::101/3\n");
  const SessionDescription sd = parseOk(text);
  CHECK(sd.serialize() == text);
  CHECK(sd.effectiveConnection(0) ==
        Connection{AddressType::kIp6, "2001:db8::10", std::nullopt, std::nullopt});
  CHECK(sd.effectiveConnection(1) == Connection{AddressType::kIp4, "224.2.1.1", 127, 3U});
  CHECK(sd.effectiveConnection(2) == Connection{AddressType::kIp6, "ff15::101", std::nullopt, 3U});
  CHECK(sd.media(2).portCount() == 2U);
}

TEST_CASE("setConnectionAddress: session-level vs media-level c=", "[sdp][rewrite]") {
  const std::string text = crlf(
      "v=0\n"
      "o=- 1 1 IN IP4 192.0.2.1\n"
      "s=-\n"
      "c=IN IP4 192.0.2.1\n"
      "t=0 0\n"
      "m=audio 4000 RTP/AVP 0\n"
      "i=main audio\n"
      "b=AS:64\n"
      "a=rtpmap:0 PCMU/8000\n"
      "m=video 4002 RTP/AVP 31\n"
      "a=rtpmap:31 H261/90000\n"
      "m=audio 4004 RTP/AVP 8\n"
      "c=IN IP4 192.0.2.99\n"
      "c=IN IP4 192.0.2.98\n");

  SECTION("sections sharing the session c= get media-level c= until none shares it") {
    SessionDescription sd = parseOk(text);
    // Audio shares the session c= with video: a media-level c= goes after m= and i=.
    REQUIRE(sd.setConnectionAddress(0, "198.51.100.1").ok());
    // Video is now the only user of the session c=, which is rewritten in place.
    REQUIRE(sd.setConnectionAddress(1, "2001:db8::1").ok());
    // The third section has its own c= lines; the first is rewritten, the other dropped.
    REQUIRE(sd.setConnectionAddress(2, "198.51.100.3").ok());
    const std::string expected = crlf(
        "v=0\n"
        "o=- 1 1 IN IP4 192.0.2.1\n"
        "s=-\n"
        "c=IN IP6 2001:db8::1\n"
        "t=0 0\n"
        "m=audio 4000 RTP/AVP 0\n"
        "i=main audio\n"
        "c=IN IP4 198.51.100.1\n"
        "b=AS:64\n"
        "a=rtpmap:0 PCMU/8000\n"
        "m=video 4002 RTP/AVP 31\n"
        "a=rtpmap:31 H261/90000\n"
        "m=audio 4004 RTP/AVP 8\n"
        "c=IN IP4 198.51.100.3\n");
    CHECK(sd.serialize() == expected);

    const SessionDescription reparsed = parseOk(sd.serialize());
    CHECK(reparsed.effectiveConnection(0)->address == "198.51.100.1");
    CHECK(reparsed.effectiveConnection(1) ==
          Connection{AddressType::kIp6, "2001:db8::1", std::nullopt, std::nullopt});
    CHECK(reparsed.effectiveConnection(2)->address == "198.51.100.3");
  }

  SECTION("setAllConnectionAddresses rewrites session and media c= in place") {
    SessionDescription sd = parseOk(text);
    REQUIRE(sd.setAllConnectionAddresses("2001:db8::7").ok());
    const std::string expected = crlf(
        "v=0\n"
        "o=- 1 1 IN IP4 192.0.2.1\n"
        "s=-\n"
        "c=IN IP6 2001:db8::7\n"
        "t=0 0\n"
        "m=audio 4000 RTP/AVP 0\n"
        "i=main audio\n"
        "b=AS:64\n"
        "a=rtpmap:0 PCMU/8000\n"
        "m=video 4002 RTP/AVP 31\n"
        "a=rtpmap:31 H261/90000\n"
        "m=audio 4004 RTP/AVP 8\n"
        "c=IN IP6 2001:db8::7\n");
    CHECK(sd.serialize() == expected);
    for (std::size_t i = 0; i < sd.mediaCount(); ++i) {
      CHECK(sd.effectiveConnection(i)->address == "2001:db8::7");
    }
  }

  SECTION("invalid addresses and indexes are refused without changes") {
    SessionDescription sd = parseOk(text);
    const absl::Status bad = sd.setConnectionAddress(0, "relay.example.com");
    CHECK(bad.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(bad.message()) ==
          "'relay.example.com' is not a literal IPv4 or IPv6 address");
    CHECK(sd.setConnectionAddress(3, "192.0.2.1").code() == absl::StatusCode::kOutOfRange);
    CHECK(sd.setAllConnectionAddresses("1.2.3.4.5").code() == absl::StatusCode::kInvalidArgument);
    CHECK(sd.serialize() == text);
  }
}

TEST_CASE("setConnectionAddress on the only section rewrites the session c=", "[sdp][rewrite]") {
  SessionDescription sd = parseOk(kMinimal);
  REQUIRE(sd.setConnectionAddress(0, "203.0.113.9").ok());
  CHECK(sd.serialize() == crlf("v=0\n"
                               "o=- 1 1 IN IP4 192.0.2.1\n"
                               "s=-\n"
                               "c=IN IP4 203.0.113.9\n"
                               "t=0 0\n"
                               "m=audio 4000 RTP/AVP 0\n"));
}

TEST_CASE("setPort keeps the port count suffix, proto and formats", "[sdp][rewrite]") {
  SessionDescription sd =
      parseOk(crlf("v=0\n"
                   "o=- 1 1 IN IP4 192.0.2.1\n"
                   "s=-\n"
                   "c=IN IP4 192.0.2.1\n"
                   "t=0 0\n"
                   "m=video 49170/2 RTP/AVP 31 32\n"
                   "m=audio 0 RTP/AVP 0\n"));
  sd.media(0).setPort(30000);
  sd.media(1).setPort(65535);
  CHECK(sd.media(0).lines()[0].value == "video 30000/2 RTP/AVP 31 32");
  CHECK(sd.media(0).portCount() == 2U);
  CHECK(sd.media(1).lines()[0].value == "audio 65535 RTP/AVP 0");
  CHECK(sd.media(1).port() == 65535);
}

TEST_CASE("a=rtcp is replaced, added and removed", "[sdp][rewrite]") {
  const std::string text = crlf(
      "v=0\n"
      "o=- 1 1 IN IP4 192.0.2.1\n"
      "s=-\n"
      "c=IN IP4 192.0.2.1\n"
      "t=0 0\n"
      "m=audio 4000 RTP/AVP 0\n"
      "a=rtcp:4001\n"
      "a=rtpmap:0 PCMU/8000\n"
      "m=audio 5000 RTP/AVP 0\n"
      "a=rtpmap:0 PCMU/8000\n");
  SessionDescription sd = parseOk(text);
  CHECK(sd.media(0).rtcp() == Rtcp{4001, std::nullopt});

  REQUIRE(sd.media(0).setRtcp(30001, "203.0.113.5").ok());
  REQUIRE(sd.media(1).setRtcp(30003).ok());
  CHECK(sd.serialize() == crlf("v=0\n"
                               "o=- 1 1 IN IP4 192.0.2.1\n"
                               "s=-\n"
                               "c=IN IP4 192.0.2.1\n"
                               "t=0 0\n"
                               "m=audio 4000 RTP/AVP 0\n"
                               "a=rtcp:30001 IN IP4 203.0.113.5\n"
                               "a=rtpmap:0 PCMU/8000\n"
                               "m=audio 5000 RTP/AVP 0\n"
                               "a=rtpmap:0 PCMU/8000\n"
                               "a=rtcp:30003\n"));
  REQUIRE(sd.media(1).setRtcp(30003, "2001:db8::5").ok());
  CHECK(sd.media(1).lines().back().value == "rtcp:30003 IN IP6 2001:db8::5");
  CHECK(sd.media(1).rtcp() ==
        Rtcp{30003, Connection{AddressType::kIp6, "2001:db8::5", std::nullopt, std::nullopt}});

  const absl::Status bad = sd.media(1).setRtcp(1, "not-an-ip");
  CHECK(std::string(bad.message()) ==
        "a=rtcp address 'not-an-ip' is not a literal IPv4 or IPv6 address");

  sd.media(0).removeRtcp();
  sd.media(1).removeRtcp();
  CHECK(sd.serialize() == withoutLines(text, {"a=rtcp:"}));
}

TEST_CASE("direction: session default, media override, setDirection", "[sdp][rewrite]") {
  const std::string text = crlf(
      "v=0\n"
      "o=- 1 1 IN IP4 192.0.2.1\n"
      "s=-\n"
      "c=IN IP4 192.0.2.1\n"
      "t=0 0\n"
      "a=recvonly\n"
      "m=audio 4000 RTP/AVP 0\n"
      "a=sendonly\n"
      "a=rtpmap:0 PCMU/8000\n"
      "m=audio 5000 RTP/AVP 0\n"
      "a=rtpmap:0 PCMU/8000\n");
  SessionDescription sd = parseOk(text);
  CHECK(sd.direction() == Direction::kRecvOnly);
  CHECK(sd.effectiveDirection(0) == Direction::kSendOnly);
  CHECK(sd.effectiveDirection(1) == Direction::kRecvOnly);
  CHECK_FALSE(sd.media(1).direction().has_value());

  sd.media(0).setDirection(Direction::kInactive);  // replaced in place
  sd.media(1).setDirection(Direction::kSendRecv);  // appended
  CHECK(sd.serialize() == crlf("v=0\n"
                               "o=- 1 1 IN IP4 192.0.2.1\n"
                               "s=-\n"
                               "c=IN IP4 192.0.2.1\n"
                               "t=0 0\n"
                               "a=recvonly\n"
                               "m=audio 4000 RTP/AVP 0\n"
                               "a=inactive\n"
                               "a=rtpmap:0 PCMU/8000\n"
                               "m=audio 5000 RTP/AVP 0\n"
                               "a=rtpmap:0 PCMU/8000\n"
                               "a=sendrecv\n"));
  CHECK(sd.effectiveDirection(0) == Direction::kInactive);
  CHECK(sd.effectiveDirection(1) == Direction::kSendRecv);

  // No direction anywhere: sendrecv (RFC 3264 5.1).
  CHECK(parseOk(kMinimal).effectiveDirection(0) == Direction::kSendRecv);
  CHECK(directionName(Direction::kRecvOnly) == "recvonly");
}

TEST_CASE("removeIceAttributes: exact output, session and media level", "[sdp][rewrite]") {
  const std::string text = crlf(
      "v=0\n"
      "o=- 1 1 IN IP4 192.0.2.1\n"
      "s=-\n"
      "t=0 0\n"
      "a=ice-lite\n"
      "a=ice-options:trickle ice2\n"
      "a=ice-ufrag:sess\n"
      "a=ice-pwd:sessionpassword0123456789\n"
      "m=audio 4000 RTP/AVP 0\n"
      "c=IN IP4 192.0.2.1\n"
      "a=ice-ufrag:F7gI\n"
      "a=ice-pwd:x9cml/YzichV2+XlhiMu8g\n"
      "a=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\n"
      "a=candidate:1 2 UDP 2130706430 192.0.2.1 4001 typ host\n"
      "a=remote-candidates:1 192.0.2.3 45664\n"
      "a=end-of-candidates\n"
      "a=ice-mismatch\n"
      "a=ice-pacing:50\n"
      "a=rtpmap:0 PCMU/8000\n"
      "a=candidates-are-not-ice:keep\n");
  SessionDescription sd = parseOk(text);
  CHECK(sd.ice().lite);
  CHECK(sd.ice().ufrag == "sess");
  CHECK(sd.media(0).ice().candidates.size() == 2);
  CHECK(sd.media(0).ice().end_of_candidates);

  SessionDescription media_only = sd;
  media_only.media(0).removeIceAttributes();
  CHECK(media_only.ice().lite);  // session level untouched
  CHECK_FALSE(media_only.media(0).hasIce());

  sd.removeIceAttributes();
  CHECK(sd.serialize() == crlf("v=0\n"
                               "o=- 1 1 IN IP4 192.0.2.1\n"
                               "s=-\n"
                               "t=0 0\n"
                               "m=audio 4000 RTP/AVP 0\n"
                               "c=IN IP4 192.0.2.1\n"
                               "a=rtpmap:0 PCMU/8000\n"
                               "a=candidates-are-not-ice:keep\n"));
}

TEST_CASE("origin rewrite and session version bump", "[sdp][rewrite]") {
  SessionDescription sd =
      parseOk(crlf("v=0\n"
                   "o=jdoe  3724394400 99 IN IP4 10.47.16.5\n"
                   "s=-\n"
                   "c=IN IP4 10.47.16.5\n"
                   "t=0 0\n"
                   "m=audio 4000 RTP/AVP 0\n"));
  REQUIRE(sd.setOriginAddress("2001:db8::1", /*bump_version=*/true).ok());
  // The double space after the username is preserved: only the rewritten tokens change.
  CHECK(sd.sessionLines()[1].value == "jdoe  3724394400 100 IN IP6 2001:db8::1");
  CHECK(sd.origin() == Origin{"jdoe", "3724394400", "100", "IN", "IP6", "2001:db8::1"});
  REQUIRE(sd.setOriginAddress("192.0.2.44", /*bump_version=*/false).ok());
  CHECK(sd.sessionLines()[1].value == "jdoe  3724394400 100 IN IP4 192.0.2.44");
  sd.bumpSessionVersion();
  CHECK(sd.origin().session_version == "101");
  CHECK(sd.setOriginAddress("", true).code() == absl::StatusCode::kInvalidArgument);

  SessionDescription big =
      parseOk(crlf("v=0\n"
                   "o=- 1 18446744073709551615 IN IP4 192.0.2.1\n"
                   "s=-\n"));
  big.bumpSessionVersion();  // arbitrary length, no 64-bit overflow
  CHECK(big.origin().session_version == "18446744073709551616");
}

TEST_CASE("addAttribute validates and appends", "[sdp][rewrite]") {
  SessionDescription sd = parseOk(kMinimal + "a=sendrecv\r\n");
  REQUIRE(sd.media(0).addAttribute("rtcp-mux").ok());
  REQUIRE(sd.media(0).addAttribute("label", "1").ok());
  CHECK(sd.serialize() == kMinimal + "a=sendrecv\r\na=rtcp-mux\r\na=label:1\r\n");

  CHECK(std::string(sd.media(0).addAttribute("rtpmap", "96 opus").message()) ==
        "a=rtpmap must be '<payload type> <encoding name>/<clock rate>[/<channels>]', got "
        "'96 opus'");
  CHECK(std::string(sd.media(0).addAttribute("bad name").message()).find("is not a token") !=
        std::string::npos);
  CHECK(std::string(sd.media(0).addAttribute("x", "a\r\nm=evil").message()).find("CR or LF") !=
        std::string::npos);
  CHECK(std::string(sd.media(0).addAttribute("inactive").message()).find("setDirection") !=
        std::string::npos);
  CHECK(sd.serialize() == kMinimal + "a=sendrecv\r\na=rtcp-mux\r\na=label:1\r\n");
}

TEST_CASE("port 0 sections need no connection address", "[sdp]") {
  const std::string text = crlf(
      "v=0\n"
      "o=- 1 1 IN IP4 192.0.2.1\n"
      "s=-\n"
      "t=0 0\n"
      "m=audio 0 RTP/AVP 0\n");
  const SessionDescription sd = parseOk(text);
  CHECK_FALSE(sd.effectiveConnection(0).has_value());
  CHECK(sd.serialize() == text);
}

TEST_CASE("malformed input is rejected with the line number and the rule", "[sdp][error]") {
  SECTION("missing or wrong v=") {
    CHECK(parseError("o=- 1 1 IN IP4 192.0.2.1\r\n") ==
          "line 1: first line must be 'v=0' (RFC 8866 5.1), got 'o=- 1 1 IN IP4 192.0.2.1'");
    CHECK(parseError("v=1\r\n").rfind("line 1: first line must be 'v=0'", 0) == 0);
    CHECK(parseError("") == "line 1: SDP is empty (it must start with 'v=0')");
    CHECK(parseError("v=0\r\n") ==
          "line 2: missing o= origin line (an SDP starts with 'v=0' then 'o=...')");
    CHECK(parseError("v=0\r\ns=-\r\n").rfind("line 2: second line must be the o= origin line", 0) ==
          0);
    CHECK(parseError(kMinimal + "v=0\r\n") == "line 7: v= may only appear once, as the first line");
  }
  SECTION("bad o=") {
    CHECK(parseError("v=0\r\no=- 1 IN IP4 192.0.2.1\r\n") ==
          "line 2: o= must have 6 fields '<username> <sess-id> <sess-version> <nettype> "
          "<addrtype> <unicast-address>', got 5");
    CHECK(parseError("v=0\r\no=- 1 x1 IN IP4 192.0.2.1\r\n") ==
          "line 2: o= session version 'x1' is not a number (decimal digits)");
  }
  SECTION("bad m= port") {
    std::string text = kMinimal;
    text.replace(text.find("4000"), 4, "abc");
    CHECK(parseError(text) == "line 6: m= port 'abc' is not a number (0-65535)");
    text = kMinimal;
    text.replace(text.find("4000"), 4, "70000");
    CHECK(parseError(text) == "line 6: m= port '70000' is out of range (0-65535)");
    text = kMinimal;
    text.replace(text.find("4000"), 4, "4000/0");
    CHECK(parseError(text) == "line 6: m= number of ports '0' is out of range (1-65535)");
    text = kMinimal;
    text.replace(text.find("4000"), 4, "-1");
    CHECK(parseError(text) == "line 6: m= port '-1' is not a number (0-65535)");
  }
  SECTION("m= with no formats or too few fields") {
    std::string text = kMinimal;
    text.replace(text.find("RTP/AVP 0"), 9, "RTP/AVP");
    CHECK(parseError(text) ==
          "line 6: m= has no formats (at least one <fmt> must follow the proto 'RTP/AVP', RFC "
          "8866 5.14)");
    CHECK(parseError(kMinimal + "m=audio\r\n") ==
          "line 7: m= must be '<media> <port>[/<number of ports>] <proto> <fmt> ...', got 1 "
          "field(s)");
  }
  SECTION("bad c=") {
    std::string text = kMinimal;
    text.replace(text.find("c=IN IP4 192.0.2.1"), 18, "c=IN IP4 999.0.2.1");
    CHECK(parseError(text) ==
          "line 4: c= address '999.0.2.1' is not a valid IP4 address (a literal address is "
          "required)");
    CHECK(parseError(kMinimal + "c=IN IP6 192.0.2.1\r\n") ==
          "line 7: c= address '192.0.2.1' is not a valid IP6 address (a literal address is "
          "required)");
    CHECK(parseError(kMinimal + "c=IN IP5 192.0.2.1\r\n") ==
          "line 7: c= address type 'IP5' is not supported (IP4 or IP6)");
    CHECK(parseError(kMinimal + "c=ATM NSAP 47.0091\r\n") ==
          "line 7: c= network type 'ATM' is not supported (only IN)");
    CHECK(parseError(kMinimal + "c=IN IP4\r\n") ==
          "line 7: c= must be '<nettype> <addrtype> <address>' (e.g. 'IN IP4 192.0.2.1'), got 2 "
          "field(s)");
    CHECK(parseError(kMinimal + "c=IN IP4 224.2.1.1/256\r\n") ==
          "line 7: c= multicast TTL '256' is out of range (0-255)");
    CHECK(parseError(kMinimal + "c=IN IP6 ff15::1/1/2\r\n")
              .rfind("line 7: c= address 'ff15::1/1/2' has too many '/' suffixes", 0) == 0);
    CHECK(parseError("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\n"
                     "c=IN IP4 192.0.2.2\r\n") ==
          "line 4: second session-level c= line (the first is on line 3; at most one is "
          "allowed, RFC 8866 5.7)");
  }
  SECTION("missing connection address") {
    const std::string text = crlf(
        "v=0\n"
        "o=- 1 1 IN IP4 192.0.2.1\n"
        "s=-\n"
        "t=0 0\n"
        "m=audio 0 RTP/AVP 0\n"
        "m=audio 4000 RTP/AVP 0\n"
        "a=rtpmap:0 PCMU/8000\n");
    CHECK(parseError(text) ==
          "line 6: media section has no connection address (c=) at media or session level; one "
          "is required unless the port is 0 (RFC 8866 5.7)");
  }
  SECTION("NUL byte and bare CR") {
    std::string text = kMinimal;
    text[text.find("s=-") + 2] = '\0';
    CHECK(parseError(text) == "line 3: NUL byte at column 3 (SDP is text; NUL is not allowed)");
    CHECK(parseError(kMinimal + "a=x\ry\r\n") ==
          "line 7: bare CR at column 4 (lines must end with CRLF or LF; CR is not allowed "
          "elsewhere)");
    CHECK(parseError(kMinimal + "a=x\r").rfind("line 7: bare CR at column 4", 0) == 0);
  }
  SECTION("line without '=' or empty line") {
    CHECK(parseError(kMinimal + "a") ==
          "line 7: expected '<type>=<value>' with a one-letter type, got 'a'");
    CHECK(parseError(kMinimal + "ab=c\r\n") ==
          "line 7: expected '<type>=<value>' with a one-letter type, got 'ab=c'");
    CHECK(parseError(kMinimal + "1=c\r\n").rfind("line 7: expected '<type>=<value>'", 0) == 0);
    CHECK(parseError(kMinimal + "\r\na=x\r\n") ==
          "line 7: empty line (every line must be '<type>=<value>')");
    CHECK(parseError("\r\n" + kMinimal) ==
          "line 1: empty line (every line must be '<type>=<value>')");
    // Quoted input is hex-escaped and cut at 48 characters.
    CHECK(parseError(kMinimal + "\x01\x02" + std::string(100, 'z') + "\r\n") ==
          "line 7: expected '<type>=<value>' with a one-letter type, got '\\x01\\x02" +
              std::string(46, 'z') + "...'");
  }
  SECTION("a blank trailer does not stand in for the o= line (fuzzer find)") {
    CHECK(parseError("v=0\r\n\n").rfind("line 2: missing o= origin line", 0) == 0);
  }
  SECTION("trailing blank lines (sipp, some SBCs) are accepted and kept verbatim") {
    for (const std::string tail : {"\r\n", "\r\n\r\n", "\n"}) {
      const std::string text = kMinimal + tail;
      auto sd = rtpx::sdp::parse(text);
      REQUIRE(sd.ok());
      CHECK(sd->serialize() == text);
      CHECK(sd->mediaCount() == 1);
    }
  }
  SECTION("oversized input and too many lines") {
    const std::string oversized = kMinimal + "a=" + std::string(70000, 'x') + "\r\n";
    CHECK(parseError(oversized) == "line 7: SDP is " + std::to_string(oversized.size()) +
                                       " bytes, over the limit of 65536 bytes");
    std::string many = kMinimal;
    for (int i = 0; i < 5000; ++i) many += "a=x\n";
    CHECK(parseError(many) == "line 4097: too many lines (limit 4096)");
  }
  SECTION("malformed attributes rtpx interprets") {
    CHECK(parseError(kMinimal + "a=rtpmap:0 PCMU\r\n") ==
          "line 7: a=rtpmap must be '<payload type> <encoding name>/<clock rate>[/<channels>]', "
          "got '0 PCMU'");
    CHECK(parseError(kMinimal + "a=rtpmap:200 PCMU/8000\r\n") ==
          "line 7: a=rtpmap payload type '200' is out of range (0-127)");
    CHECK(parseError(kMinimal + "a=rtcp:port\r\n") ==
          "line 7: a=rtcp port 'port' is not a number (0-65535)");
    CHECK(parseError(kMinimal + "a=rtcp:4001 IN IP4\r\n") ==
          "line 7: a=rtcp must be '<port>' or '<port> IN IP4|IP6 <address>' (RFC 3605), got 3 "
          "field(s)");
    CHECK(parseError(kMinimal + "a=rtcp:4001 IN IP4 300.1.1.1\r\n") ==
          "line 7: a=rtcp address '300.1.1.1' is not a valid IP4 address (a literal address is "
          "required)");
    CHECK(parseError(kMinimal + "a=ptime:0\r\n") ==
          "line 7: a=ptime '0' is not a positive number of milliseconds (e.g. 20 or 22.5)");
    CHECK(parseError(kMinimal + "a=rtpmap\r\n").rfind("line 7: a=rtpmap needs a value", 0) == 0);
    CHECK(parseError(kMinimal + "a=mid:\r\n").rfind("line 7: a=mid needs a non-empty", 0) == 0);
    CHECK(parseError(kMinimal + "a=sendonly\r\na=recvonly\r\n") ==
          "line 8: second direction attribute 'a=recvonly' in the same section (the first is on "
          "line 7; at most one of sendrecv/sendonly/recvonly/inactive, RFC 3264 5.1)");
  }
}

}  // namespace
}  // namespace rtpx::sdp
