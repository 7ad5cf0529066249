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

std::string decodeError(std::string_view in) {
  try {
    bencode::decode(in);
  } catch (const bencode::Error& e) {
    return e.what();
  }
  FAIL("decoded without an error: " << in);
  return {};
}

TEST_CASE("bencode encodes each type", "[bencode]") {
  CHECK(bencode::encode(Value("spam")) == "4:spam");
  CHECK(bencode::encode(Value("")) == "0:");
  CHECK(bencode::encode(Value(0)) == "i0e");
  CHECK(bencode::encode(Value(-42)) == "i-42e");
  CHECK(bencode::encode(Value(INT64_MAX)) == "i9223372036854775807e");
  CHECK(bencode::encode(Value(INT64_MIN)) == "i-9223372036854775808e");
  CHECK(bencode::encode(Value(List{})) == "le");
  CHECK(bencode::encode(Value(Dict{})) == "de");
  CHECK(bencode::encode(Value(List{"a", 1, List{}})) == "l1:ai1elee");
}

TEST_CASE("bencode sorts dictionary keys by their bytes", "[bencode]") {
  const Dict d{{"sdp", "v=0"}, {"result", "ok"}, {"b", 1}, {"a", 2}, {"\xff", 3}, {"B", 4}};
  CHECK(bencode::encode(Value(d)) == "d1:Bi4e1:ai2e1:bi1e6:result2:ok3:sdp3:v=01:\xffi3ee");
  CHECK_THROWS_AS(bencode::encode(Value(Dict{{"a", 1}, {"a", 2}})), bencode::Error);
}

TEST_CASE("bencode strings are byte strings", "[bencode]") {
  const std::string bytes("a\0b\r\n\xff e:", 8);
  const std::string enc = bencode::encode(Value(bytes));
  CHECK(enc == std::string("8:") + bytes);
  const Value back = bencode::decode(enc);
  REQUIRE(back.isString());
  CHECK(back.str() == bytes);
}

TEST_CASE("bencode round-trips nested structures", "[bencode]") {
  const Value v(Dict{
      {"command", "offer"},
      {"call-id", "abc@host"},
      {"flags", List{"trust-address", "symmetric"}},
      {"replace", List{"origin", "session-connection"}},
      {"nested", Dict{{"list", List{List{List{}}, Dict{{"x", -1}}, ""}}, {"n", 123456789012}}},
      {"sdp", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"},
  });
  const std::string enc = bencode::encode(v);
  const Value back = bencode::decode(enc);
  CHECK(back == v);
  CHECK(bencode::encode(back) == enc);
  REQUIRE(back.find("nested") != nullptr);
  const Value* list = back.find("nested")->find("list");
  REQUIRE(list != nullptr);
  REQUIRE(list->list().size() == 3);
  CHECK(list->list()[1].find("x")->integer() == -1);
  CHECK(back.find("absent") == nullptr);
  CHECK(Value("str").find("x") == nullptr);
}

TEST_CASE("bencode decodes unsorted dictionaries, as rtpengine sends them", "[bencode]") {
  const Value v = bencode::decode("d3:sdp3:v=06:result2:oke");
  REQUIRE(v.isDict());
  CHECK(v.dict().size() == 2);
  CHECK(v.find("result")->str() == "ok");
  CHECK(v.find("sdp")->str() == "v=0");
  CHECK(bencode::encode(v) == "d6:result2:ok3:sdp3:v=0e");
}

TEST_CASE("bencode integer limits", "[bencode]") {
  CHECK(bencode::decode("i9223372036854775807e").integer() == INT64_MAX);
  CHECK(bencode::decode("i-9223372036854775808e").integer() == INT64_MIN);
  CHECK(bencode::decode("i0e").integer() == 0);
  CHECK_THAT(decodeError("i9223372036854775808e"), Catch::Contains("out of range"));
  CHECK_THAT(decodeError("i-9223372036854775809e"), Catch::Contains("out of range"));
  CHECK_THAT(decodeError("i99999999999999999999999e"), Catch::Contains("out of range"));
}

TEST_CASE("bencode rejects malformed input", "[bencode]") {
  CHECK_THAT(decodeError(""), Catch::Contains("unexpected end"));
  CHECK_THAT(decodeError("i-0e"), Catch::Contains("negative zero"));
  CHECK_THAT(decodeError("i03e"), Catch::Contains("leading zero"));
  CHECK_THAT(decodeError("ie"), Catch::Contains("empty number"));
  CHECK_THAT(decodeError("i-e"), Catch::Contains("empty number"));
  CHECK_THAT(decodeError("i+3e"), Catch::Contains("not a digit"));
  CHECK_THAT(decodeError("i3"), Catch::Contains("missing 'e'"));
  CHECK_THAT(decodeError("i1.5e"), Catch::Contains("not a digit"));
  CHECK_THAT(decodeError("5:abc"), Catch::Contains("past the end"));
  CHECK_THAT(decodeError("03:abc"), Catch::Contains("leading zero"));
  CHECK_THAT(decodeError("-1:a"), Catch::Contains("unexpected byte"));
  CHECK_THAT(decodeError("3abc"), Catch::Contains("missing ':'"));
  CHECK_THAT(decodeError("99999999999999999999999:a"), Catch::Contains("out of range"));
  CHECK_THAT(decodeError("l"), Catch::Contains("unexpected end"));
  CHECK_THAT(decodeError("li1e"), Catch::Contains("unexpected end"));
  CHECK_THAT(decodeError("d1:a"), Catch::Contains("unexpected end"));
  CHECK_THAT(decodeError("d"), Catch::Contains("unexpected end"));
  CHECK_THAT(decodeError("di1ei2ee"), Catch::Contains("key is not a string"));
  CHECK_THAT(decodeError("d1:ai1e1:ai2ee"), Catch::Contains("duplicate"));
  CHECK_THAT(decodeError("i1ei2e"), Catch::Contains("trailing"));
  CHECK_THAT(decodeError("4:spam "), Catch::Contains("trailing"));
  CHECK_THAT(decodeError("x"), Catch::Contains("unexpected byte 0x78"));
  CHECK_THAT(decodeError("e"), Catch::Contains("unexpected byte"));
  CHECK_THAT(decodeError("l1:ae1"), Catch::Contains("trailing"));
  CHECK_THAT(decodeError("d1:ae"), Catch::Contains("unexpected byte"));
}

TEST_CASE("bencode bounds nesting", "[bencode]") {
  CHECK_NOTHROW(bencode::decode(std::string(100, 'l') + std::string(100, 'e')));
  CHECK_THAT(decodeError(std::string(100000, 'l') + std::string(100000, 'e')),
             Catch::Contains("nested too deeply"));
}

TEST_CASE("bencode reports a read of the wrong type", "[bencode]") {
  CHECK_THROWS_AS(Value("x").integer(), bencode::Error);
  CHECK_THROWS_AS(Value(1).str(), bencode::Error);
  CHECK_THROWS_AS(Value(1).list(), bencode::Error);
  CHECK_THROWS_AS(Value(List{}).dict(), bencode::Error);
}

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
        const Value req = bencode::decode(msg.substr(space + 1));
        for (const std::string& out : reply(cookie, req))
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
      const std::string cmd = req.find("command")->str();
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
    if (req.find("command")->str() == "ping") return std::vector<std::string>{cookie + " d4:resu"};
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
