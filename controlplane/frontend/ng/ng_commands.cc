#include "controlplane/frontend/ng/ng_commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "controlplane/core/str_cat.h"

namespace rtpx::ng {
namespace {

using bencode::Dict;
using bencode::List;
using bencode::Value;

// rtpengine's own reasons, where a softswitch reads them.
constexpr std::string_view kSessionLimit = "Parallel session limit reached";
constexpr std::string_view kOutOfPorts = "Ran out of ports";
constexpr std::string_view kNotFoundWarning = "Call-ID not found or tags didn't match";

// rtpengine accepts '-' or ' ' inside key names ("delete-delay" / "delete delay").
const Value* get(const Dict& d, std::string_view key) {
  if (const Value* v = bencode::find(d, key)) return v;
  std::string alt(key);
  for (char& c : alt) c = c == '-' ? ' ' : c == ' ' ? '-' : c;
  return alt == key ? nullptr : bencode::find(d, alt);
}

// A string value; an integer is read as its decimal form (rtpengine takes either).
std::optional<std::string> getString(const Dict& d, std::string_view key) {
  const Value* v = get(d, key);
  if (v == nullptr) return std::nullopt;
  if (const std::string* s = v->str()) return *s;
  if (std::optional<int64_t> i = v->integer()) return std::to_string(*i);
  return std::nullopt;
}

// A list of strings; a single string is a list of one.
std::vector<std::string> getList(const Dict& d, std::string_view key) {
  std::vector<std::string> out;
  const Value* v = get(d, key);
  if (v == nullptr) return out;
  if (const std::string* s = v->str()) {
    out.push_back(*s);
  } else if (const List* l = v->list()) {
    for (const Value& e : *l)
      if (const std::string* s = e.str()) out.push_back(*s);
  }
  return out;
}

std::optional<int64_t> getInt(const Dict& d, std::string_view key) {
  const Value* v = get(d, key);
  if (v == nullptr) return std::nullopt;
  if (std::optional<int64_t> i = v->integer()) return i;
  if (const std::string* s = v->str()) {
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
    if (ec == std::errc() && end == s->data() + s->size()) return n;
  }
  return std::nullopt;
}

bool isOff(std::string_view v) {
  return v == "off" || v == "no" || v == "disable" || v == "disabled";
}

// The transport protocols of the SDP's active m= lines ("RTP/AVP", ...).
std::vector<std::string> protos(std::string_view sdp) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = sdp.find("m=", pos)) != std::string_view::npos) {
    if (pos != 0 && sdp[pos - 1] != '\n') {
      pos += 2;
      continue;
    }
    const std::size_t eol = sdp.find('\n', pos);
    std::string_view line =
        sdp.substr(pos + 2, eol == std::string_view::npos ? sdp.npos : eol - pos - 2);
    pos += 2;
    // <media> <port> <proto> ...
    const std::size_t a = line.find(' ');
    const std::size_t b = a == line.npos ? line.npos : line.find(' ', a + 1);
    const std::size_t c = b == line.npos ? line.npos : line.find(' ', b + 1);
    if (b == line.npos) continue;
    if (line.substr(a + 1, b - a - 1) == "0") continue;  // disabled
    std::string_view proto = line.substr(b + 1, c == line.npos ? line.npos : c - b - 1);
    if (!proto.empty() && proto.back() == '\r') proto.remove_suffix(1);
    out.emplace_back(proto);
  }
  return out;
}

// Every key a request may carry that rtpx reads (or knowingly answers with a warning); any
// other key earns a warning, never silence.
constexpr std::string_view kKnownKeys[] = {
    "command",       "call-id",       "from-tag",     "to-tag",
    "via-branch",    "sdp",           "flags",        "replace",
    "direction",     "received-from", "ICE",          "transport-protocol",
    "rtcp-mux",      "SDES",          "DTLS",         "codec",
    "ptime",         "label",         "from-label",   "address-family",
    "media-address", "supports",      "delete-delay", "TOS",
    "repacketize",   "T.38",          "record-call",  "metadata",
    "limit",         "interface"};

bool knownKey(std::string key) {
  for (char& c : key)
    if (c == ' ') c = '-';
  return std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) != std::end(kKnownKeys);
}

// What a request's options say, typed.
struct Options {
  OfferOptions session;  // the offer's; an answer uses its RewriteOptions part
  std::optional<std::chrono::milliseconds> delete_delay;
  bool supports_load_limit = false;
  bool fatal = false;  // delete: an unknown call is an error, not a warning
  std::vector<std::string> warnings;
};

struct Refusal {
  std::string reason;
};

// Reads the options of an offer, answer or delete. An option rtpx cannot honour that would
// change what reaches the wire is refused; one that would not is a warning.
std::optional<Refusal> readOptions(const Dict& req, std::string_view sdp, Options& o) {
  auto refuse = [](std::string why) { return std::optional<Refusal>(Refusal{std::move(why)}); };
  auto warn = [&](std::string w) { o.warnings.push_back(std::move(w)); };
  for (const auto& [key, value] : req)
    if (!knownKey(key)) warn(cat("unknown key '", key, "' ignored"));

  for (const std::string& s : getList(req, "supports"))
    if (s == "load limit") o.supports_load_limit = true;

  // Flags. rtpengine also takes the list-valued options as flag prefixes.
  std::vector<std::string> replace = getList(req, "replace");
  std::vector<std::string> sdes = getList(req, "SDES");
  std::vector<std::string> mux = getList(req, "rtcp-mux");
  bool codec_flags = false;
  for (const std::string& f : getList(req, "flags")) {
    auto prefixed = [&](std::string_view p, std::vector<std::string>& into) {
      if (f.rfind(p, 0) != 0) return false;
      into.push_back(f.substr(p.size()));
      return true;
    };
    if (prefixed("replace-", replace) || prefixed("SDES-", sdes) || prefixed("rtcp-mux-", mux))
      continue;
    if (f.rfind("codec-", 0) == 0 || f.rfind("transcode-", 0) == 0) {
      codec_flags = true;
      continue;
    }
    if (f == "trust-address") {
      o.session.trust_address = true;
    } else if (f == "SIP-source-address") {
      o.session.trust_address = false;
    } else if (f == "symmetric" || f == "strict-source" || f == "port-latching" || f == "all" ||
               f == "directional") {
      // rtpx's defaults: symmetric RTP, latched, strict after latching.
    } else if (f == "fatal") {
      o.fatal = true;
    } else if (f == "asymmetric" || f == "unidirectional") {
      return refuse(cat("flag '", f, "' is not supported: rtpx relays symmetric RTP only"));
    } else if (f == "fragment" || f == "trickle-ICE") {
      return refuse(cat("flag '", f, "' is not supported yet: rtpx does not do ICE"));
    } else {
      warn(cat("flag '", f, "' is not supported by rtpx and was ignored"));
    }
  }
  for (const std::string& r : replace) {
    if (r == "origin") {
      o.session.replace_origin = true;
    } else if (r == "session-connection" || r == "session connection") {
      // rtpx always writes its address into every c= line.
    } else {
      warn(cat("replace '", r, "' is not supported by rtpx and was ignored"));
    }
  }
  for (const std::string& s : sdes)
    if (!isOff(s)) warn(cat("SDES '", s, "' has no effect: rtpx does not terminate SRTP yet"));
  if (std::optional<std::string> dtls = getString(req, "DTLS"); dtls && !isOff(*dtls))
    warn(cat("DTLS '", *dtls, "' has no effect: rtpx does not terminate DTLS yet"));
  for (const std::string& m : mux) {
    if (m == "accept") continue;  // a=rtcp-mux passes through to the answerer as offered
    if (m == "offer" && sdp.find("a=rtcp-mux") != std::string_view::npos) continue;
    return refuse(
        cat("rtcp-mux '", m, "' is not supported yet: rtpx passes rtcp-mux through as negotiated"));
  }

  if (std::optional<std::string> ice = getString(req, "ICE")) {
    if (*ice == "force" || *ice == "force-relay" || *ice == "optional")
      return refuse(cat("ICE '", *ice, "' is not supported yet: rtpx does not do ICE"));
    if (*ice != "remove" && *ice != "default")
      return refuse(cat("ICE '", *ice, "' is not a known ICE option (remove, default)"));
  }
  if (sdp.find("a=candidate") != std::string_view::npos ||
      sdp.find("a=ice-ufrag") != std::string_view::npos)
    warn("ICE attributes removed: rtpx does not do ICE yet");

  if (std::optional<std::string> tp = getString(req, "transport-protocol")) {
    for (const std::string& p : protos(sdp))
      if (p != *tp)
        return refuse(cat("transport-protocol '", *tp, "' would need bridging from '", p,
                          "' (RTP/SRTP/AVPF bridging is not supported yet)"));
  }
  const Value* codec = get(req, "codec");
  if (codec_flags || (codec != nullptr && codec->dict() != nullptr && !codec->dict()->empty()))
    return refuse(
        "codec options (strip, offer, transcode, mask, set, except, accept) are not "
        "supported yet: rtpx passes codecs through");
  if (get(req, "ptime") != nullptr)
    return refuse("ptime is not supported yet: it needs repacketizing (transcoding)");
  if (get(req, "repacketize") != nullptr)
    return refuse("repacketize is not supported yet: it needs transcoding");
  if (get(req, "T.38") != nullptr) return refuse("T.38 options are not supported");
  if (get(req, "TOS") != nullptr) warn("TOS is not supported by rtpx and was ignored");
  if (get(req, "record-call") != nullptr || get(req, "metadata") != nullptr)
    warn("call recording is not supported by rtpx");

  const std::vector<std::string> direction = getList(req, "direction");
  if (direction.size() > 2)
    return refuse(cat("direction has ", direction.size(), " entries (at most two interfaces)"));
  if (!direction.empty()) o.session.offerer_interface = direction[0];
  if (direction.size() == 2) o.session.answerer.interface = direction[1];
  if (std::optional<std::string> af = getString(req, "address-family")) {
    if (*af == "IP4")
      o.session.answerer.family = IpAddr::Family::kV4;
    else if (*af == "IP6")
      o.session.answerer.family = IpAddr::Family::kV6;
    else
      return refuse(cat("address family '", *af, "' is not IP4 or IP6"));
  }
  if (std::optional<std::string> ma = getString(req, "media-address")) {
    o.session.media_address = IpAddr::parse(*ma);
    if (!o.session.media_address)
      return refuse(cat("media address '", *ma, "' is not an IPv4 or IPv6 address"));
  }
  if (const std::vector<std::string> rf = getList(req, "received-from"); rf.size() == 2) {
    o.session.received_from = IpAddr::parse(rf[1]);
    if (!o.session.received_from)
      return refuse(cat("received-from address '", rf[1], "' is not an IPv4 or IPv6 address"));
  }
  if (std::optional<std::string> l = getString(req, "label")) o.session.label = *l;
  if (std::optional<std::string> l = getString(req, "from-label")) o.session.label = *l;
  if (std::optional<std::string> b = getString(req, "via-branch")) o.session.via_branch = *b;
  if (const Value* dd = get(req, "delete-delay")) {
    std::optional<int64_t> s = getInt(req, "delete-delay");
    if (!s || *s < 0 || *s > 86400)
      return refuse("delete delay must be a number of seconds between 0 and 86400");
    (void)dd;
    o.delete_delay = std::chrono::seconds(*s);
  }
  return std::nullopt;
}

Dict okReply() {
  Dict d;
  bencode::set(d, "result", "ok");
  return d;
}

void addWarnings(Dict& reply, const std::vector<std::string>& warnings) {
  if (warnings.empty()) return;
  std::string all;
  for (const std::string& w : warnings) all += cat(all.empty() ? "" : "; ", w);
  bencode::set(reply, "warning", std::move(all));
}

int64_t unixSeconds(uint64_t monotonic_ns, uint64_t now_ns) {
  const auto wall = std::chrono::system_clock::now() -
                    std::chrono::nanoseconds(now_ns >= monotonic_ns ? now_ns - monotonic_ns : 0);
  return std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
}

Dict endpoint(const Endpoint& e) {
  Dict d;
  bencode::set(d, "family", e.addr.isV6() ? "IPv6" : "IPv4");
  bencode::set(d, "address", e.addr.toString());
  bencode::set(d, "port", static_cast<int64_t>(e.port));
  return d;
}

// A call's statistics in rtpengine's shape: created, last signal, tags (per leg: its media
// and streams, each with the rtpx port facing that leg and what came from it), totals.
void addCallStats(Dict& reply, const CallInfo& c) {
  bencode::set(reply, "created", unixSeconds(c.created_ns, c.now_ns));
  bencode::set(reply, "last signal", unixSeconds(c.created_ns, c.now_ns));
  Dict tags;
  uint64_t totals[2][3] = {};  // RTP, RTCP × packets, bytes, errors
  for (const LegInfo& leg : c.legs) {
    Dict t;
    bencode::set(t, "tag", leg.tag);
    if (!leg.label.empty()) bencode::set(t, "label", leg.label);
    if (!leg.via_branch.empty()) bencode::set(t, "via-branch", leg.via_branch);
    List medias;
    for (const MediaInfo& m : c.media) {
      if (leg.side < 0) break;
      Dict md;
      bencode::set(md, "index", static_cast<int64_t>(m.index + 1));
      bencode::set(md, "type", m.type);
      List streams;
      for (const DirectionInfo& d : m.directions) {
        if (d.from_tag != leg.tag) continue;
        Dict s;
        bencode::set(s, "local port", static_cast<int64_t>(d.local.port));
        bencode::set(s, "local address", d.local.addr.toString());
        if (d.stats.latched) bencode::set(s, "endpoint", endpoint(d.stats.latched_source));
        List flags;
        flags.emplace_back(d.rtcp ? "RTCP" : "RTP");
        bencode::set(s, "flags", std::move(flags));
        const uint64_t errors =
            d.stats.dropped_source + d.stats.dropped_no_destination + d.stats.dropped_no_route;
        Dict st;
        bencode::set(st, "packets", static_cast<int64_t>(d.stats.packets));
        bencode::set(st, "bytes", static_cast<int64_t>(d.stats.bytes));
        bencode::set(st, "errors", static_cast<int64_t>(errors));
        bencode::set(s, "stats", std::move(st));
        streams.emplace_back(std::move(s));
        uint64_t* tot = totals[d.rtcp ? 1 : 0];
        tot[0] += d.stats.packets;
        tot[1] += d.stats.bytes;
        tot[2] += errors;
      }
      bencode::set(md, "streams", std::move(streams));
      medias.emplace_back(std::move(md));
    }
    bencode::set(t, "medias", std::move(medias));
    bencode::set(tags, leg.tag, std::move(t));
  }
  bencode::set(reply, "tags", std::move(tags));
  Dict tot;
  for (int k = 0; k < 2; ++k) {
    Dict x;
    bencode::set(x, "packets", static_cast<int64_t>(totals[k][0]));
    bencode::set(x, "bytes", static_cast<int64_t>(totals[k][1]));
    bencode::set(x, "errors", static_cast<int64_t>(totals[k][2]));
    bencode::set(tot, k == 0 ? "RTP" : "RTCP", std::move(x));
  }
  bencode::set(reply, "totals", std::move(tot));
}

}  // namespace

Dict errorReply(std::string reason) {
  Dict d;
  bencode::set(d, "result", "error");
  bencode::set(d, "error-reason", std::move(reason));
  return d;
}

Dict NgCommands::handle(const Value& request) {
  const Dict* req = request.dict();
  if (req == nullptr) return errorReply("Could not decode bencode dictionary");
  std::optional<std::string> command = getString(*req, "command");
  if (!command) return errorReply("Dictionary contains no key \"command\"");
  if (*command == "ping") {
    Dict d;
    bencode::set(d, "result", "pong");
    return d;
  }
  if (*command == "offer") return offerOrAnswer(*req, true);
  if (*command == "answer") return offerOrAnswer(*req, false);
  if (*command == "delete") return remove(*req);
  if (*command == "query") return query(*req);
  if (*command == "list") return list(*req);
  if (*command == "statistics") return statistics();
  static constexpr std::string_view kRtpengineOnly[] = {
      "start recording",  "stop recording",   "pause recording", "block DTMF",
      "unblock DTMF",     "block media",      "unblock media",   "silence media",
      "unsilence media",  "start forwarding", "stop forwarding", "play media",
      "stop media",       "play DTMF",        "publish",         "subscribe request",
      "subscribe answer", "unsubscribe"};
  if (std::find(std::begin(kRtpengineOnly), std::end(kRtpengineOnly), *command) !=
      std::end(kRtpengineOnly))
    return errorReply(cat("Unsupported command: rtpx does not implement '", *command, "'"));
  return errorReply("Unrecognized command");
}

Dict NgCommands::offerOrAnswer(const Dict& req, bool offer) {
  const Value* sdp_value = get(req, "sdp");
  const std::string* sdp = sdp_value ? sdp_value->str() : nullptr;
  if (sdp == nullptr) return errorReply("No SDP body in message");
  std::optional<std::string> call_id = getString(req, "call-id");
  if (!call_id || call_id->empty()) return errorReply("No call-id in message");
  std::optional<std::string> from_tag = getString(req, "from-tag");
  if (!from_tag || from_tag->empty()) return errorReply("No from-tag in message");
  std::optional<std::string> to_tag = getString(req, "to-tag");
  if (!offer && (!to_tag || to_tag->empty())) return errorReply("No to-tag in message");
  Options o;
  if (std::optional<Refusal> r = readOptions(req, *sdp, o)) return errorReply(r->reason);
  if (offer && to_tag) o.session.to_tag = *to_tag;

  const bool existed = offer && sessions_.query(*call_id).ok();
  absl::StatusOr<std::string> out =
      offer ? sessions_.offer(*call_id, *from_tag, *sdp, o.session)
            : sessions_.answer(*call_id, *from_tag, *to_tag, *sdp, o.session);
  if (!out.ok()) {
    const absl::Status& st = out.status();
    const std::string detail(st.message());
    switch (st.code()) {
      case absl::StatusCode::kUnavailable: {  // load limit
        ++rejected_;
        spdlog::info("ng: {} refused: {}", *call_id, detail);
        if (!o.supports_load_limit) return errorReply(std::string(kSessionLimit));
        Dict d;
        bencode::set(d, "result", "load limit");
        bencode::set(d, "message", std::string(kSessionLimit));
        return d;
      }
      case absl::StatusCode::kResourceExhausted:
        spdlog::warn("ng: {}: {}", *call_id, detail);
        // Exactly rtpengine's reason: Kamailio compares it byte for byte to fail over.
        return errorReply(std::string(kOutOfPorts));
      case absl::StatusCode::kNotFound:
        if (detail.rfind("no call", 0) == 0) return errorReply(cat("Unknown call-id: ", detail));
        return errorReply(cat("Invalid dialogue association: ", detail));
      case absl::StatusCode::kInvalidArgument:
        if (detail.rfind("line ", 0) == 0) return errorReply(cat("Failed to parse SDP: ", detail));
        return errorReply(detail);
      default:
        return errorReply(detail);
    }
  }
  if (offer && !existed) ++managed_;
  Dict d;
  bencode::set(d, "sdp", *std::move(out));
  bencode::set(d, "result", "ok");
  addWarnings(d, o.warnings);
  return d;
}

Dict NgCommands::remove(const Dict& req) {
  std::optional<std::string> call_id = getString(req, "call-id");
  if (!call_id || call_id->empty()) return errorReply("No call-id in message");
  Options o;
  if (std::optional<Refusal> r = readOptions(req, "", o)) return errorReply(r->reason);
  DeleteOptions del;
  del.from_tag = getString(req, "from-tag").value_or("");
  del.to_tag = getString(req, "to-tag").value_or("");
  del.via_branch = o.session.via_branch;
  del.delay = o.delete_delay;
  absl::StatusOr<CallInfo> info = sessions_.deleteCall(*call_id, del);
  if (!info.ok()) {
    if (info.status().code() != absl::StatusCode::kNotFound)
      return errorReply(std::string(info.status().message()));
    // A retransmitted or duplicate delete (Kamailio sends two for a rejected call) is harmless.
    if (o.fatal) return errorReply(std::string(kNotFoundWarning));
    Dict d = okReply();
    o.warnings.insert(o.warnings.begin(), std::string(kNotFoundWarning));
    addWarnings(d, o.warnings);
    return d;
  }
  Dict d;
  addCallStats(d, *info);
  bencode::set(d, "result", "ok");
  addWarnings(d, o.warnings);
  return d;
}

Dict NgCommands::query(const Dict& req) {
  std::optional<std::string> call_id = getString(req, "call-id");
  if (!call_id || call_id->empty()) return errorReply("No call-id in message");
  absl::StatusOr<CallInfo> info = sessions_.query(*call_id);
  if (!info.ok()) {
    if (info.status().code() == absl::StatusCode::kNotFound) return errorReply("Unknown call-id");
    return errorReply(std::string(info.status().message()));
  }
  Dict d;
  addCallStats(d, *info);
  bencode::set(d, "result", "ok");
  return d;
}

Dict NgCommands::list(const Dict& req) {
  int64_t limit = 32;
  if (get(req, "limit") != nullptr) {
    std::optional<int64_t> l = getInt(req, "limit");
    if (!l || *l < 0) return errorReply("invalid limit, must be >= 0");
    limit = *l;
  }
  List calls;
  for (const CallSummary& s : sessions_.list()) {
    if (static_cast<int64_t>(calls.size()) >= limit) break;
    calls.emplace_back(s.call_id);
  }
  Dict d;
  bencode::set(d, "calls", std::move(calls));
  bencode::set(d, "result", "ok");
  return d;
}

Dict NgCommands::statistics() {
  const SessionGauges g = sessions_.gauges();
  Dict current;
  bencode::set(current, "sessionsown", static_cast<int64_t>(g.calls));
  bencode::set(current, "sessionsforeign", int64_t{0});
  bencode::set(current, "sessionstotal", static_cast<int64_t>(g.calls));
  bencode::set(current, "transcodedmedia", int64_t{0});
  Dict total;
  bencode::set(total, "managedsessions", static_cast<int64_t>(managed_));
  bencode::set(total, "rejectedsessions", static_cast<int64_t>(rejected_));
  Dict stats;
  bencode::set(stats, "currentstatistics", std::move(current));
  bencode::set(stats, "totalstatistics", std::move(total));
  Dict d;
  bencode::set(d, "statistics", std::move(stats));
  bencode::set(d, "result", "ok");
  return d;
}

}  // namespace rtpx::ng
