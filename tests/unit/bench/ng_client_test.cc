#include "bench/ng_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace rtpx::bench {
namespace {

using bencode::Dict;
using bencode::List;
using bencode::Value;

TEST_CASE("NgClient rejects bad addresses", "[ng]") {
  CHECK_THROWS_AS(NgClient("127.0.0.1"), NgError);
  CHECK_THROWS_AS(NgClient("127.0.0.1:"), NgError);
  CHECK_THROWS_AS(NgClient(":2223"), NgError);
  CHECK_THROWS_AS(NgClient("127.0.0.1:x"), NgError);
  CHECK_THROWS_AS(NgClient("127.0.0.1:70000"), NgError);
  CHECK_THROWS_AS(NgClient("127.0.0.1:0"), NgError);
  CHECK_THROWS_AS(NgClient("::1:2223"), NgError);
  CHECK_THROWS_AS(NgClient("[::1:2223"), NgError);
  CHECK_THROWS_AS(NgClient("300.1.2.3:2223"), NgError);
  CHECK_NOTHROW(NgClient("127.0.0.1:2223"));
  CHECK_NOTHROW(NgClient("[::1]:2223"));
}

// A fake rtpengine on a loopback socket: answers each request through `reply`, which gets the
// cookie and the decoded request and returns the datagrams to send back (none: drop it).
class FakeServer {
 public:
  template <typename F>
  explicit FakeServer(int requests, F reply) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Bounded, so a test that sends fewer requests than expected still ends.
    const timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this, requests, reply] {
      char buf[65536];
      for (int i = 0; i < requests; ++i) {
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        const ssize_t n =
            recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n <= 0) return;
        const std::string_view msg(buf, static_cast<std::size_t>(n));
        const auto space = msg.find(' ');
        const std::string cookie(msg.substr(0, space));
        absl::StatusOr<Value> req = bencode::decode(msg.substr(space + 1));
        if (!req.ok()) return;  // the test's checks on what arrived fail
        for (const std::string& out : reply(cookie, *req))
          sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      }
    });
  }
  ~FakeServer() {
    thread_.join();
    close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST_CASE("NgClient offer/answer/delete against a fake rtpengine", "[ng]") {
  std::vector<std::string> cookies;
  std::vector<Value> requests;
  {
    FakeServer server(4, [&](const std::string& cookie, const Value& req) {
      cookies.push_back(cookie);
      requests.push_back(req);
      const std::string cmd = *req.find("command")->str();
      Dict reply{{"result", cmd == "ping" ? "pong" : "ok"}};
      if (cmd == "offer" || cmd == "answer") reply.emplace_back("sdp", "rewritten " + cmd);
      // A stale reply first, which the client must skip.
      return std::vector<std::string>{"stale_1 " + bencode::encode(Value(Dict{{"result", "ok"}})),
                                      cookie + " " + bencode::encode(Value(reply))};
    });
    NgClient ng(server.address(), 1000);
    ng.ping();
    CHECK(ng.offer("c1", "ft", "v=0 offer", {"trust-address"}) == "rewritten offer");
    CHECK(ng.answer("c1", "ft", "tt", "v=0 answer") == "rewritten answer");
    ng.remove("c1");
  }  // joins the server thread
  REQUIRE(requests.size() == 4);
  CHECK(requests[0] == Value(Dict{{"command", "ping"}}));
  CHECK(requests[1] == Value(Dict{{"call-id", "c1"},
                                  {"command", "offer"},
                                  {"flags", List{"trust-address"}},
                                  {"from-tag", "ft"},
                                  {"sdp", "v=0 offer"}}));
  CHECK(requests[2] == Value(Dict{{"call-id", "c1"},
                                  {"command", "answer"},
                                  {"from-tag", "ft"},
                                  {"sdp", "v=0 answer"},
                                  {"to-tag", "tt"}}));
  CHECK(requests[3] == Value(Dict{{"call-id", "c1"}, {"command", "delete"}}));
  for (std::size_t i = 0; i < cookies.size(); ++i)
    for (std::size_t j = i + 1; j < cookies.size(); ++j) CHECK(cookies[i] != cookies[j]);
}

TEST_CASE("NgClient reports rtpengine's error-reason", "[ng]") {
  FakeServer server(1, [](const std::string& cookie, const Value&) {
    return std::vector<std::string>{
        cookie + " " +
        bencode::encode(Value(Dict{{"result", "error"}, {"error-reason", "Unknown call-id"}}))};
  });
  NgClient ng(server.address(), 1000);
  CHECK_THROWS_WITH(ng.remove("nope"), Catch::Contains("Unknown call-id"));
}

TEST_CASE("NgClient rejects a malformed reply", "[ng]") {
  FakeServer server(2, [](const std::string& cookie, const Value& req) {
    if (*req.find("command")->str() == "ping") return std::vector<std::string>{cookie + " d4:resu"};
    return std::vector<std::string>{cookie + " d3:sdp1:xe"};
  });
  NgClient ng(server.address(), 1000);
  CHECK_THROWS_WITH(ng.ping(), Catch::Contains("malformed reply"));
  CHECK_THROWS_WITH(ng.offer("c", "f", "v=0"), Catch::Contains("malformed reply"));
}

TEST_CASE("NgClient retransmits once with the same cookie, then gives up", "[ng]") {
  std::vector<std::string> cookies;
  SECTION("the retransmission is answered") {
    {
      FakeServer server(2, [&](const std::string& cookie, const Value&) {
        cookies.push_back(cookie);
        if (cookies.size() == 1) return std::vector<std::string>{};
        return std::vector<std::string>{cookie + " d6:result4:ponge"};
      });
      NgClient ng(server.address(), 200);
      ng.ping();
    }
    REQUIRE(cookies.size() == 2);
    CHECK(cookies[0] == cookies[1]);
  }
  SECTION("nothing is answered") {
    {
      FakeServer server(2, [&](const std::string& cookie, const Value&) {
        cookies.push_back(cookie);
        return std::vector<std::string>{};
      });
      NgClient ng(server.address(), 100);
      CHECK_THROWS_WITH(ng.ping(), Catch::Contains("no reply"));
    }
    CHECK(cookies.size() == 2);
  }
}

}  // namespace
}  // namespace rtpx::bench
