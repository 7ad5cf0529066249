// rtpxd: the rtpx media relay daemon. Reads its configuration, brings up the DPDK dataplane
// and the control interfaces, and runs the main lcore's control loop until SIGINT/SIGTERM.
#include <absl/strings/str_join.h>
#include <absl/synchronization/mutex.h>
#include <rte_eal.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "controlplane/core/session_manager.h"
#include "controlplane/daemon/config.h"
#include "controlplane/daemon/dev_netns.h"
#include "controlplane/frontend/control_server.h"
#include "controlplane/frontend/ng/ng_server.h"
#include "controlplane/frontend/session_service.h"
#include "dataplane/dataplane.h"

namespace {

std::atomic<bool> g_stop{false};

void onSignal(int) {
  g_stop.store(true);
}

int fail(const absl::Status& st) {
  spdlog::critical("{}", std::string(st.message()));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rtpxd — DPDK media relay. With no --config it runs its embedded default: one "
      "worker on net_af_packet over a veth pair into network namespace 'rtpx'."};
  std::string config_path;
  std::vector<std::string> overrides;
  std::string grpc_listen, http_listen, log_level;
  bool print_config = false, check_config = false;
  app.add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "Override a key: section.key=value (TOML value)");
  app.add_option("--grpc-listen", grpc_listen, "gRPC address (default 127.0.0.1:50051)");
  app.add_option("--http-listen", http_listen, "HTTP address (default 127.0.0.1:9911)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  app.add_flag("--print-config", print_config, "Print the effective configuration and exit");
  app.add_flag("--check-config", check_config, "Validate the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  if (!grpc_listen.empty()) overrides.push_back("grpc.listen=\"" + grpc_listen + "\"");
  if (!http_listen.empty()) overrides.push_back("http.listen=\"" + http_listen + "\"");
  if (!log_level.empty()) overrides.push_back("log.level=\"" + log_level + "\"");
  auto cfg = config_path.empty() ? rtpx::parseConfig("", overrides)
                                 : rtpx::loadConfigFile(config_path, overrides);
  if (!cfg.ok()) {
    std::cerr << "rtpxd: " << std::string(cfg.status().message()) << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << rtpx::toToml(*cfg);
    return 0;
  }
  if (check_config) {
    std::cout << "configuration OK\n";
    return 0;
  }
  // Debian's Abseil is a debug build: every absl::Mutex (gRPC takes several per RPC) would
  // feed a lock-order graph, a few per cent of the server's CPU at high set-up rates.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  spdlog::info("rtpxd {} starting", RTPX_VERSION);

  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  std::signal(SIGPIPE, SIG_IGN);

  if (cfg->dev_netns.enabled) {
    if (auto st = rtpx::setUpDevNetns(cfg->dev_netns); !st.ok()) return fail(st);
  }
  auto eal = rtpx::initEal(cfg->dataplane.eal, cfg->dataplane.interfaces);
  if (!eal.ok()) {
    if (cfg->dev_netns.enabled) rtpx::tearDownDevNetns(cfg->dev_netns);
    return fail(eal.status());
  }
  spdlog::info("EAL: {}", absl::StrJoin(*eal, " "));
  int rc = 0;
  {
    auto dp = rtpx::Dataplane::start(cfg->dataplane);
    if (!dp.ok()) {
      rc = fail(dp.status());
    } else {
      rtpx::Dataplane& d = **dp;
      // DPDK port ids by interface, in configuration order.
      const rtpx::StatsSnapshot snap = d.stats();
      std::vector<uint16_t> port_ids;
      for (const auto& ifc : cfg->dataplane.interfaces) {
        uint16_t id = static_cast<uint16_t>(port_ids.size());
        for (size_t p = 0; p < snap.interface_names.size(); ++p)
          if (snap.interface_names[p] == ifc.name) id = static_cast<uint16_t>(p);
        port_ids.push_back(id);
      }
      auto sessions = rtpx::SessionManager::create(
          cfg->sessions, rtpx::sessionInterfaces(*cfg, port_ids), d.flows(),
          [&d](uint16_t port, const rtpx::IpAddr& next_hop) { d.requestResolve(port, next_hop); });
      if (!sessions.ok()) {
        rc = fail(sessions.status());
      } else {
        rtpx::SessionManager& sm = **sessions;
        rtpx::SessionService session_service(sm);
        // The dataplane's statistics, plus what sessions hold (calls, flows, ports).
        rtpx::ControlServer control(
            [&d, &sm] {
              rtpx::StatsSnapshot s = d.stats();
              s.sessions = sm.gauges();
              return s;
            },
            [&d] { return d.ready(); });
        control.addService(&session_service, rtpx::v1::SessionService::service_full_name(),
                           [&session_service] { session_service.shutdown(); });
        if (auto st = control.start(cfg->grpc_listen, cfg->http_listen); !st.ok()) {
          rc = fail(st);
          g_stop.store(true);
        }
        // rtpengine's NG protocol for Kamailio / OpenSIPS, onto the same session manager.
        rtpx::ng::NgCommands ng_commands(sm);
        rtpx::ng::NgServer ng(ng_commands);
        if (rc == 0 && !cfg->ng_listen.empty())
          if (auto st = ng.start(cfg->ng_listen); !st.ok()) {
            rc = fail(st);
            g_stop.store(true);
          }
        // Session timeouts and media start, evaluated a few times a second.
        std::thread ticker([&sm, &session_service] {
          pthread_setname_np(pthread_self(), "rtpx-sessions");
          while (!g_stop.load()) {
            sm.tick(sm.now());
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
          }
          // End event streams now, while the dataplane winds down.
          session_service.shutdown();
        });
        d.run(g_stop, [&control](bool ready) { control.setServing(ready); });
        spdlog::info("shutting down");
        ticker.join();
        ng.stop();
        control.stop();
        sm.closeSubscriptions();
      }
    }
  }
  rte_eal_cleanup();
  if (cfg->dev_netns.enabled) rtpx::tearDownDevNetns(cfg->dev_netns);
  spdlog::info("rtpxd stopped");
  return rc;
}
