#include "controlplane/daemon/dev_netns.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

extern char** environ;

namespace rtpx {
namespace {

// Runs a command without a shell; returns its exit status.
int run(std::vector<std::string> args, bool quiet = false) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return 127;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

absl::Status must(std::vector<std::string> args) {
  if (int rc = run(args); rc != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("dev_netns: '", absl::StrJoin(args, " "), "' failed with status ", rc));
  return absl::OkStatus();
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void writeSysctl(const std::string& path, const char* value) {
  std::ofstream f(path);
  if (f) f << value;
}

}  // namespace

absl::Status setUpDevNetns(const DevNetnsConfig& c) {
  if (!exists("/run/netns/" + c.ns)) {
    if (auto st = must({"ip", "netns", "add", c.ns}); !st.ok()) return st;
  }
  if (!exists("/sys/class/net/" + c.host_ifname)) {
    if (auto st = must({"ip", "link", "add", c.host_ifname, "type", "veth", "peer", "name",
                        c.peer_ifname, "netns", c.ns});
        !st.ok())
      return st;
  }
  // The host end belongs to DPDK: the kernel must neither answer nor speak on it.
  writeSysctl("/proc/sys/net/ipv6/conf/" + c.host_ifname + "/disable_ipv6", "1");
  if (auto st = must({"ip", "link", "set", c.host_ifname, "up"}); !st.ok()) return st;
  if (auto st = must({"ip", "-n", c.ns, "link", "set", "lo", "up"}); !st.ok()) return st;
  if (c.peer_ipv4) {
    if (auto st = must(
            {"ip", "-n", c.ns, "addr", "replace", c.peer_ipv4->toString(), "dev", c.peer_ifname});
        !st.ok())
      return st;
  }
  if (c.peer_ipv6) {
    if (auto st = must({"ip", "-n", c.ns, "-6", "addr", "replace", c.peer_ipv6->toString(), "dev",
                        c.peer_ifname, "nodad"});
        !st.ok())
      return st;
  }
  if (auto st = must({"ip", "-n", c.ns, "link", "set", c.peer_ifname, "up"}); !st.ok()) return st;
  // Kernel sockets in the namespace would otherwise leave UDP checksums to a "hardware" offload
  // that a veth never performs; the dataplane then sees partial checksums.
  if (run({"ip", "netns", "exec", c.ns, "ethtool", "-K", c.peer_ifname, "tx", "off"}, true) != 0)
    spdlog::warn(
        "dev_netns: could not turn off tx checksum offload on {} (is ethtool "
        "installed?); UDP from the namespace may carry partial checksums",
        c.peer_ifname);
  spdlog::info("dev_netns: {} <-> {} in namespace {} ({} {}); try: ip netns exec {} ping {}",
               c.host_ifname, c.peer_ifname, c.ns, c.peer_ipv4 ? c.peer_ipv4->toString() : "-",
               c.peer_ipv6 ? c.peer_ipv6->toString() : "-", c.ns, "<rtpx address>");
  return absl::OkStatus();
}

void tearDownDevNetns(const DevNetnsConfig& c) {
  if (!c.remove_on_exit) return;
  // Deleting one end of a veth pair deletes both; the namespace stays for the next start.
  if (exists("/sys/class/net/" + c.host_ifname)) run({"ip", "link", "del", c.host_ifname}, true);
}

}  // namespace rtpx
