#include "controlplane/daemon/config.h"
#include "dataplane/interface.h"

#include <absl/strings/str_cat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

namespace rtpx {

Config defaultConfig() {
  Config c;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  c.dataplane.eal.worker_cpus = {cpus > 1 ? 1u : 0u};
  InterfaceConfig ifc;
  ifc.name = "media0";
  ifc.device = "net_af_packet0,iface=rtpx0,qpairs=1";
  ifc.ipv4 = IpPrefix::parse("192.0.2.2/24");
  ifc.ipv6 = IpPrefix::parse("2001:db8::2/64");
  ifc.gateway4 = IpAddr::parse("192.0.2.1");
  ifc.gateway6 = IpAddr::parse("2001:db8::1");
  c.dataplane.interfaces = {ifc};
  c.interface_sessions = {InterfaceSessionConfig{}};
  return c;
}

namespace {

using absl::InvalidArgumentError;

struct Reader {
  const toml::table& t;
  std::string section;
  absl::Status status = absl::OkStatus();

  std::string where(std::string_view key) const {
    return section.empty() ? std::string(key) : absl::StrCat(section, ".", std::string(key));
  }
  void fail(std::string msg) {
    if (status.ok()) status = InvalidArgumentError(std::move(msg));
  }
  template <typename T>
  void num(std::string_view key, T& out, int64_t lo, int64_t hi) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    auto v = n->value_exact<int64_t>();
    if (!v || *v < lo || *v > hi)
      return fail(
          absl::StrCat("config ", where(key), ": expected an integer in [", lo, ", ", hi, "]"));
    out = static_cast<T>(*v);
  }
  void str(std::string_view key, std::string& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    auto v = n->value_exact<std::string>();
    if (!v) return fail(absl::StrCat("config ", where(key), ": expected a string"));
    out = *v;
  }
  void boolean(std::string_view key, bool& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    auto v = n->value_exact<bool>();
    if (!v) return fail(absl::StrCat("config ", where(key), ": expected true or false"));
    out = *v;
  }
  void prefix(std::string_view key, std::optional<IpPrefix>& out, IpAddr::Family fam) {
    std::string s;
    if (t.get(key) == nullptr) return;
    str(key, s);
    if (s.empty()) {
      out.reset();
      return;
    }
    auto p = IpPrefix::parse(s);
    if (!p || p->addr.family != fam)
      return fail(absl::StrCat("config ", where(key), ": '", s, "' is not an IPv",
                               fam == IpAddr::Family::kV4 ? "4" : "6",
                               " address with prefix length, e.g. ",
                               fam == IpAddr::Family::kV4 ? "192.0.2.2/24" : "2001:db8::2/64"));
    out = p;
  }
  // An interface's addresses of one family: one "address/len" string, an array of them, or a
  // range "first-last/len" (the last 32 bits counting up). The first lands in `first`, the rest
  // in `extra`; "" or [] means none.
  void prefixes(std::string_view key, std::optional<IpPrefix>& first, std::vector<IpPrefix>& extra,
                IpAddr::Family fam) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    const char* v = fam == IpAddr::Family::kV4 ? "4" : "6";
    const std::string example =
        fam == IpAddr::Family::kV4 ? "\"192.0.2.2/24\", [\"192.0.2.2/24\", \"192.0.2.3/24\"] or "
                                     "\"192.0.2.2-192.0.2.9/24\""
                                   : "\"2001:db8::2/64\", [\"2001:db8::2/64\", \"2001:db8::3/64\"] "
                                     "or \"2001:db8::2-2001:db8::9/64\"";
    std::vector<std::string> items;
    if (const toml::array* a = n->as_array()) {
      for (const auto& e : *a) {
        auto s = e.value_exact<std::string>();
        if (!s || s->empty())
          return fail(absl::StrCat("config ", where(key), ": expected IPv", v,
                                   " addresses with prefix length, e.g. ", example));
        items.push_back(*s);
      }
    } else if (auto s = n->value_exact<std::string>()) {
      if (!s->empty()) items.push_back(*s);
    } else {
      return fail(
          absl::StrCat("config ", where(key), ": expected a string or an array, e.g. ", example));
    }
    std::vector<IpPrefix> all;
    for (const std::string& item : items) {
      auto bad = [&](const std::string& why) {
        fail(absl::StrCat("config ", where(key), ": '", item, "' ", why, " (e.g. ", example, ")"));
      };
      const size_t dash = item.find('-');
      if (dash == std::string::npos) {
        auto p = IpPrefix::parse(item);
        if (!p || p->addr.family != fam)
          return bad(absl::StrCat("is not an IPv", v, " address with prefix length"));
        all.push_back(*p);
        continue;
      }
      const size_t slash = item.find('/', dash);
      auto lo = IpPrefix::parse(item.substr(0, dash) +
                                (slash == std::string::npos ? "" : item.substr(slash)));
      auto hi = IpAddr::parse(
          item.substr(dash + 1, slash == std::string::npos ? std::string::npos : slash - dash - 1));
      if (!lo || !hi || lo->addr.family != fam || hi->family != fam)
        return bad(absl::StrCat("is not a range of IPv", v, " addresses with prefix length"));
      // Only the last 32 bits may differ; they count up from the first to the last address.
      const size_t fixed = fam == IpAddr::Family::kV4 ? 0 : 12;
      auto low32 = [&](const IpAddr& a) {
        return uint32_t{a.bytes[fixed]} << 24 | uint32_t{a.bytes[fixed + 1]} << 16 |
               uint32_t{a.bytes[fixed + 2]} << 8 | a.bytes[fixed + 3];
      };
      const uint32_t from = low32(lo->addr), to = low32(*hi);
      if (std::memcmp(lo->addr.bytes.data(), hi->bytes.data(), fixed) != 0 || to < from)
        return bad("is not a range from a first to a last address");
      if (to - from >= kMaxAddressesPerFamily)
        return bad(absl::StrCat("holds more than ", kMaxAddressesPerFamily, " addresses"));
      for (uint32_t x = from;; ++x) {
        IpPrefix p = *lo;
        for (int b = 0; b < 4; ++b)
          p.addr.bytes[fixed + b] = static_cast<uint8_t>(x >> (24 - 8 * b));
        if (!p.contains(p.addr)) break;
        all.push_back(p);
        if (x == to) break;
      }
      if (!all.back().contains(*hi)) return bad("leaves its prefix");
    }
    if (all.size() > kMaxAddressesPerFamily)
      return fail(absl::StrCat("config ", where(key), ": ", all.size(), " IPv", v,
                               " addresses (at most ", kMaxAddressesPerFamily, ")"));
    for (size_t i = 0; i < all.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (all[i].addr == all[j].addr)
          return fail(
              absl::StrCat("config ", where(key), ": ", all[i].addr.toString(), " appears twice"));
    first.reset();
    extra.clear();
    if (all.empty()) return;
    first = all.front();
    extra.assign(all.begin() + 1, all.end());
  }
  void addr(std::string_view key, std::optional<IpAddr>& out, IpAddr::Family fam) {
    std::string s;
    if (t.get(key) == nullptr) return;
    str(key, s);
    if (s.empty()) {
      out.reset();
      return;
    }
    auto a = IpAddr::parse(s);
    if (!a || a->family != fam)
      return fail(absl::StrCat("config ", where(key), ": '", s, "' is not an IPv",
                               fam == IpAddr::Family::kV4 ? "4" : "6", " address"));
    out = a;
  }
  void strings(std::string_view key, std::vector<std::string>& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    const toml::array* a = n->as_array();
    if (a == nullptr) return fail(absl::StrCat("config ", where(key), ": expected an array"));
    out.clear();
    for (const auto& e : *a) {
      auto v = e.value_exact<std::string>();
      if (!v) return fail(absl::StrCat("config ", where(key), ": expected strings"));
      out.push_back(*v);
    }
  }
  void cpus(std::string_view key, std::vector<unsigned>& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    const toml::array* a = n->as_array();
    if (a == nullptr || a->empty())
      return fail(absl::StrCat("config ", where(key), ": expected a non-empty array of CPU ids"));
    out.clear();
    for (const auto& e : *a) {
      auto v = e.value_exact<int64_t>();
      if (!v || *v < 0 || *v >= 1024)
        return fail(absl::StrCat("config ", where(key), ": CPU ids are integers in [0, 1023]"));
      out.push_back(static_cast<unsigned>(*v));
    }
  }
  // Keys the section may hold; anything else is a typo worth stopping for.
  void only(std::initializer_list<std::string_view> keys) {
    for (const auto& [k, v] : t) {
      bool known = false;
      for (auto allowed : keys) known = known || k.str() == allowed;
      if (!known) {
        std::string list;
        for (auto allowed : keys)
          absl::StrAppend(&list, list.empty() ? "" : ", ", std::string(allowed));
        return fail(absl::StrCat("config ", where(k.str()), ": unknown key (allowed: ", list, ")"));
      }
    }
  }
};

const toml::table* section(const toml::table& root, std::string_view name, absl::Status& st) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  if (!n->is_table() && st.ok())
    st = InvalidArgumentError(
        absl::StrCat("config ", std::string(name), ": expected a table [", std::string(name), "]"));
  return n->as_table();
}

absl::Status apply(const toml::table& root, Config& c) {
  absl::Status st;
  for (const auto& [k, v] : root) {
    static constexpr std::string_view kTop[] = {"eal",      "dataplane", "neighbor", "interface",
                                                "sessions", "dev_netns", "grpc",     "http",
                                                "ng",       "log"};
    if (std::find(std::begin(kTop), std::end(kTop), k.str()) == std::end(kTop))
      return InvalidArgumentError(
          absl::StrCat("config: unknown section '", std::string(k.str()),
                       "' (allowed: eal, dataplane, neighbor, interface, sessions, dev_netns, "
                       "grpc, http, ng, log)"));
  }
  auto& eal = c.dataplane.eal;
  if (auto* t = section(root, "eal", st)) {
    Reader r{*t, "eal"};
    r.only({"main_cpu", "worker_cpus", "no_huge", "memory_mb", "file_prefix", "log_level",
            "extra_args"});
    r.num("main_cpu", eal.main_cpu, 0, 1023);
    r.cpus("worker_cpus", eal.worker_cpus);
    r.boolean("no_huge", eal.no_huge);
    r.num("memory_mb", eal.memory_mb, 0, 1 << 20);
    r.str("file_prefix", eal.file_prefix);
    r.str("log_level", eal.log_level);
    r.strings("extra_args", eal.extra_args);
    if (!r.status.ok()) return r.status;
  }
  if (auto* t = section(root, "dataplane", st)) {
    Reader r{*t, "dataplane"};
    r.only({"mbufs_per_socket", "mbuf_cache", "rx_burst", "idle_spin_polls", "idle_spin_us",
            "idle_max_sleep_us", "busy_poll"});
    r.num("mbufs_per_socket", c.dataplane.mbufs_per_socket, 1023, 1 << 26);
    r.num("mbuf_cache", c.dataplane.mbuf_cache, 0, 512);
    r.num("rx_burst", c.dataplane.rx_burst, 1, 64);
    r.num("idle_spin_polls", c.dataplane.idle.spin_polls, 0, 1 << 30);
    r.num("idle_spin_us", c.dataplane.idle.spin_us, 0, 10'000'000);
    r.num("idle_max_sleep_us", c.dataplane.idle.max_sleep_us, 1, 100000);
    r.boolean("busy_poll", c.dataplane.idle.busy_poll);
    if (!r.status.ok()) return r.status;
  }
  if (auto* t = section(root, "neighbor", st)) {
    Reader r{*t, "neighbor"};
    r.only({"reachable_ms", "retrans_ms", "max_probes"});
    r.num("reachable_ms", c.dataplane.neighbor.reachable_ms, 1000, 3600000);
    r.num("retrans_ms", c.dataplane.neighbor.retrans_ms, 100, 60000);
    r.num("max_probes", c.dataplane.neighbor.max_probes, 1, 100);
    if (!r.status.ok()) return r.status;
  }
  if (const toml::node* n = root.get("interface")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr || arr->empty())
      return InvalidArgumentError("config interface: expected one or more [[interface]] tables");
    c.dataplane.interfaces.clear();
    c.interface_sessions.clear();
    // An explicit interface list is a real deployment: no dev namespace unless asked for.
    c.dev_netns.enabled = false;
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::table* t = (*arr)[i].as_table();
      if (t == nullptr) return InvalidArgumentError("config interface: expected tables");
      InterfaceConfig ifc;
      InterfaceSessionConfig ifs;
      ifc.name = absl::StrCat("media", i);
      ifc.ipv4.reset();
      ifc.ipv6.reset();
      Reader r{*t, absl::StrCat("interface[", i, "]")};
      r.only({"name", "device", "ipv4", "ipv6", "gateway4", "gateway6", "advertised_ipv4",
              "advertised_ipv6", "mtu", "rx_descriptors", "tx_descriptors"});
      r.str("name", ifc.name);
      r.str("device", ifc.device);
      r.prefixes("ipv4", ifc.ipv4, ifc.extra_ipv4, IpAddr::Family::kV4);
      r.prefixes("ipv6", ifc.ipv6, ifc.extra_ipv6, IpAddr::Family::kV6);
      r.addr("gateway4", ifc.gateway4, IpAddr::Family::kV4);
      r.addr("gateway6", ifc.gateway6, IpAddr::Family::kV6);
      r.addr("advertised_ipv4", ifs.advertised_ipv4, IpAddr::Family::kV4);
      r.addr("advertised_ipv6", ifs.advertised_ipv6, IpAddr::Family::kV6);
      r.num("mtu", ifc.mtu, 576, 9000);
      r.num("rx_descriptors", ifc.rx_descriptors, 64, 16384);
      r.num("tx_descriptors", ifc.tx_descriptors, 64, 16384);
      if (!r.status.ok()) return r.status;
      if (ifc.device.empty())
        return InvalidArgumentError(absl::StrCat(
            "config interface[", i,
            "].device: required (a vdev such as "
            "\"net_af_packet0,iface=eth1\" or a PCI address such as \"0000:00:06.0\")"));
      if (!ifc.ipv4 && !ifc.ipv6)
        return InvalidArgumentError(
            absl::StrCat("config interface[", i, "]: needs an ipv4 or ipv6 address"));
      // One advertised address cannot stand for several local ones.
      for (const auto& [adv, extra, key] :
           {std::tuple{ifs.advertised_ipv4.has_value(), ifc.extra_ipv4.size(), "ipv4"},
            std::tuple{ifs.advertised_ipv6.has_value(), ifc.extra_ipv6.size(), "ipv6"}})
        if (adv && extra != 0)
          return InvalidArgumentError(absl::StrCat(
              "config interface[", i, "].advertised_", key, ": only with a single ", key,
              " address (it stands for that one; ", extra + 1, " are configured)"));
      if (ifs.advertised_ipv4 && !ifc.ipv4)
        return InvalidArgumentError(
            absl::StrCat("config interface[", i,
                         "].advertised_ipv4: needs ipv4 (the local address it stands for)"));
      if (ifs.advertised_ipv6 && !ifc.ipv6)
        return InvalidArgumentError(
            absl::StrCat("config interface[", i,
                         "].advertised_ipv6: needs ipv6 (the local address it stands for)"));
      c.dataplane.interfaces.push_back(ifc);
      c.interface_sessions.push_back(ifs);
    }
  }
  if (auto* t = section(root, "sessions", st)) {
    Reader r{*t, "sessions"};
    r.only({"port_min", "port_max", "flow_capacity", "no_media_s", "one_sided_s",
            "offer_unanswered_s", "delete_delay_s", "max_sessions", "max_load"});
    auto& s = c.sessions;
    r.num("port_min", s.port_min, 1, 65534);
    r.num("port_max", s.port_max, 2, 65535);
    r.num("flow_capacity", c.dataplane.flow_capacity, 64, 1 << 24);
    r.num("no_media_s", s.no_media_s, 0, 86400);
    r.num("one_sided_s", s.one_sided_s, 0, 86400);
    r.num("offer_unanswered_s", s.offer_unanswered_s, 0, 86400);
    r.num("delete_delay_s", s.delete_delay_s, 0, 3600);
    r.num("max_sessions", s.max_sessions, 0, 100000000);
    r.num("max_load", s.max_load, 0, 100000);
    if (!r.status.ok()) return r.status;
  }
  // Checked whether or not the section is present: an override may have moved one bound.
  if (c.sessions.port_min + (c.sessions.port_min % 2) + 1 > c.sessions.port_max)
    return InvalidArgumentError(
        absl::StrCat("config sessions: port range ", c.sessions.port_min, "-", c.sessions.port_max,
                     " holds no RTP/RTCP pair (port_max must be above an even port >= port_min)"));
  if (auto* t = section(root, "dev_netns", st)) {
    Reader r{*t, "dev_netns"};
    r.only({"enabled", "namespace", "host_ifname", "peer_ifname", "peer_ipv4", "peer_ipv6",
            "remove_on_exit"});
    r.boolean("enabled", c.dev_netns.enabled);
    r.str("namespace", c.dev_netns.ns);
    r.str("host_ifname", c.dev_netns.host_ifname);
    r.str("peer_ifname", c.dev_netns.peer_ifname);
    r.prefix("peer_ipv4", c.dev_netns.peer_ipv4, IpAddr::Family::kV4);
    r.prefix("peer_ipv6", c.dev_netns.peer_ipv6, IpAddr::Family::kV6);
    r.boolean("remove_on_exit", c.dev_netns.remove_on_exit);
    if (!r.status.ok()) return r.status;
    if (c.dev_netns.host_ifname.size() > 15 || c.dev_netns.peer_ifname.size() > 15)
      return InvalidArgumentError("config dev_netns: interface names are at most 15 characters");
  }
  // The control interfaces: one `listen` key each.
  for (const auto& [name, listen] : {std::pair<const char*, std::string*>{"grpc", &c.grpc_listen},
                                     {"ng", &c.ng_listen},
                                     {"http", &c.http_listen}}) {
    if (auto* t = section(root, name, st)) {
      Reader r{*t, name};
      r.only({"listen"});
      r.str("listen", *listen);
      if (!r.status.ok()) return r.status;
    }
  }
  if (auto* t = section(root, "log", st)) {
    Reader r{*t, "log"};
    r.only({"level"});
    r.str("level", c.log_level);
    if (!r.status.ok()) return r.status;
    static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                   "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level) == std::end(kLevels))
      return InvalidArgumentError(
          absl::StrCat("config log.level: '", c.log_level,
                       "' (allowed: trace, debug, info, warn, error, critical, off)"));
  }
  return st;
}

// "a.b=v" → a TOML table {a = {b = v}}; a value that is not TOML becomes a string.
absl::StatusOr<toml::table> overrideTable(const std::string& o) {
  auto eq = o.find('=');
  auto dot = o.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq)
    return InvalidArgumentError(absl::StrCat("override '", o, "': expected section.key=value"));
  std::string sect = o.substr(0, dot), key = o.substr(dot + 1, eq - dot - 1),
              val = o.substr(eq + 1);
  std::string text = absl::StrCat("[", sect, "]\n", key, " = ", val, "\n");
  try {
    return toml::parse(text);
  } catch (const toml::parse_error&) {
    toml::table t;
    toml::table inner;
    inner.insert(key, val);
    t.insert(sect, std::move(inner));
    return t;
  }
}

void merge(toml::table& dst, const toml::table& src) {
  for (const auto& [k, v] : src) {
    if (v.is_table() && dst.get(k.str()) && dst.get(k.str())->is_table())
      merge(*dst.get(k.str())->as_table(), *v.as_table());
    else
      dst.insert_or_assign(k.str(), v);
  }
}

}  // namespace

absl::StatusOr<Config> parseConfig(std::string_view toml_text,
                                   const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError(absl::StrCat("config: line ", e.source().begin.line, ", column ",
                                             e.source().begin.column, ": ",
                                             std::string(e.description())));
  }
  for (const auto& o : overrides) {
    auto t = overrideTable(o);
    if (!t.ok()) return t.status();
    merge(root, *t);
  }
  Config c = defaultConfig();
  if (auto st = apply(root, c); !st.ok()) return st;
  return c;
}

absl::StatusOr<Config> loadConfigFile(const std::string& path,
                                      const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config file ", path, ": cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = parseConfig(ss.str(), overrides);
  if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", c.status().message()));
  return c;
}

std::string toToml(const Config& c) {
  const auto& e = c.dataplane.eal;
  toml::array cpus;
  for (unsigned v : e.worker_cpus) cpus.push_back(int64_t(v));
  toml::array extra;
  for (const auto& s : e.extra_args) extra.push_back(s);
  toml::array ifs;
  for (const auto& i : c.dataplane.interfaces) {
    toml::table t{{"name", i.name},
                  {"device", i.device},
                  {"mtu", int64_t(i.mtu)},
                  {"rx_descriptors", int64_t(i.rx_descriptors)},
                  {"tx_descriptors", int64_t(i.tx_descriptors)}};
    // One address as a string (as the shipped example writes it), several as an array.
    auto addresses = [&](const char* key, const std::optional<IpPrefix>& first,
                         const std::vector<IpPrefix>& extra) {
      if (!first) return;
      if (extra.empty()) {
        t.insert(key, first->toString());
        return;
      }
      toml::array a{first->toString()};
      for (const IpPrefix& p : extra) a.push_back(p.toString());
      t.insert(key, std::move(a));
    };
    addresses("ipv4", i.ipv4, i.extra_ipv4);
    addresses("ipv6", i.ipv6, i.extra_ipv6);
    if (i.gateway4) t.insert("gateway4", i.gateway4->toString());
    if (i.gateway6) t.insert("gateway6", i.gateway6->toString());
    const size_t index = ifs.size();
    if (index < c.interface_sessions.size()) {
      const InterfaceSessionConfig& s = c.interface_sessions[index];
      if (s.advertised_ipv4) t.insert("advertised_ipv4", s.advertised_ipv4->toString());
      if (s.advertised_ipv6) t.insert("advertised_ipv6", s.advertised_ipv6->toString());
    }
    ifs.push_back(std::move(t));
  }
  const SessionsConfig& s = c.sessions;
  toml::table sessions{{"port_min", int64_t(s.port_min)},
                       {"port_max", int64_t(s.port_max)},
                       {"flow_capacity", int64_t(c.dataplane.flow_capacity)},
                       {"no_media_s", int64_t(s.no_media_s)},
                       {"one_sided_s", int64_t(s.one_sided_s)},
                       {"offer_unanswered_s", int64_t(s.offer_unanswered_s)},
                       {"delete_delay_s", int64_t(s.delete_delay_s)},
                       {"max_sessions", int64_t(s.max_sessions)},
                       {"max_load", int64_t(s.max_load)}};
  toml::table dev{{"enabled", c.dev_netns.enabled},
                  {"namespace", c.dev_netns.ns},
                  {"host_ifname", c.dev_netns.host_ifname},
                  {"peer_ifname", c.dev_netns.peer_ifname},
                  {"remove_on_exit", c.dev_netns.remove_on_exit}};
  // An empty string is how a cleared address is written (and read back).
  dev.insert("peer_ipv4", c.dev_netns.peer_ipv4 ? c.dev_netns.peer_ipv4->toString() : "");
  dev.insert("peer_ipv6", c.dev_netns.peer_ipv6 ? c.dev_netns.peer_ipv6->toString() : "");
  toml::table root{
      {"eal", toml::table{{"main_cpu", int64_t(e.main_cpu)},
                          {"worker_cpus", cpus},
                          {"no_huge", e.no_huge},
                          {"memory_mb", int64_t(e.memory_mb)},
                          {"file_prefix", e.file_prefix},
                          {"log_level", e.log_level},
                          {"extra_args", extra}}},
      {"dataplane", toml::table{{"mbufs_per_socket", int64_t(c.dataplane.mbufs_per_socket)},
                                {"mbuf_cache", int64_t(c.dataplane.mbuf_cache)},
                                {"rx_burst", int64_t(c.dataplane.rx_burst)},
                                {"idle_spin_polls", int64_t(c.dataplane.idle.spin_polls)},
                                {"idle_spin_us", int64_t(c.dataplane.idle.spin_us)},
                                {"idle_max_sleep_us", int64_t(c.dataplane.idle.max_sleep_us)},
                                {"busy_poll", c.dataplane.idle.busy_poll}}},
      {"neighbor", toml::table{{"reachable_ms", int64_t(c.dataplane.neighbor.reachable_ms)},
                               {"retrans_ms", int64_t(c.dataplane.neighbor.retrans_ms)},
                               {"max_probes", int64_t(c.dataplane.neighbor.max_probes)}}},
      {"interface", ifs},
      {"sessions", sessions},
      {"dev_netns", dev},
      {"grpc", toml::table{{"listen", c.grpc_listen}}},
      {"http", toml::table{{"listen", c.http_listen}}},
      {"ng", toml::table{{"listen", c.ng_listen}}},
      {"log", toml::table{{"level", c.log_level}}},
  };
  std::stringstream ss;
  ss << root << "\n";
  return ss.str();
}

std::vector<SessionInterface> sessionInterfaces(const Config& cfg,
                                                const std::vector<uint16_t>& port_ids) {
  std::vector<SessionInterface> out;
  for (std::size_t i = 0; i < cfg.dataplane.interfaces.size(); ++i) {
    const InterfaceConfig& ic = cfg.dataplane.interfaces[i];
    SessionInterface s;
    s.name = ic.name;
    s.port_id = i < port_ids.size() ? port_ids[i] : static_cast<uint16_t>(i);
    s.ipv4 = ic.ipv4;
    s.ipv6 = ic.ipv6;
    s.extra_ipv4 = ic.extra_ipv4;
    s.extra_ipv6 = ic.extra_ipv6;
    s.gateway4 = ic.gateway4;
    s.gateway6 = ic.gateway6;
    if (i < cfg.interface_sessions.size()) {
      s.advertised_ipv4 = cfg.interface_sessions[i].advertised_ipv4;
      s.advertised_ipv6 = cfg.interface_sessions[i].advertised_ipv6;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace rtpx
