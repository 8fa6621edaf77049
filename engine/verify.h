// Cutover verification: is a machine answering on an IP (TCP connect or
// ICMP echo), polled until the expected state holds or time runs out.
//
// Contract
//   Prober::probe() makes one attempt and says whether the address
//   answered: TCP means the port accepted a connection (a refusal, RST, is
//   "not answering": nothing listens there yet); ICMP means an echo reply
//   with our identifier and sequence came back. A probe that cannot even be
//   attempted (bad address, no ICMP socket allowed) is an error, not "down".
//   RealProber uses non-blocking sockets with the attempt's timeout; ICMP
//   tries an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP, Linux
//   net.ipv4.ping_group_range) first and a raw socket (root) second.
//   verify_reachability() probes every poll interval until the expected
//   state is seen or timeout passes; the result says which, how many
//   attempts and how long. Running out of time is Code::timeout naming the
//   address, the mode and what was expected.
// Thread safety: probes are independent; no shared state.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/clock.h"
#include "engine/http.h"
#include "engine/status.h"

namespace vmlift {

enum class ProbeMode { tcp, icmp };
enum class Expect { reachable, unreachable };

Result<ProbeMode> parse_probe_mode(const std::string& text);
Result<Expect> parse_expect(const std::string& text);

class Prober {
  public:
    virtual ~Prober() = default;
    virtual Result<bool> probe(const std::string& ip, int port, ProbeMode mode,
                               std::chrono::milliseconds timeout) = 0;
};

class RealProber : public Prober {
  public:
    Result<bool> probe(const std::string& ip, int port, ProbeMode mode,
                       std::chrono::milliseconds timeout) override;
};

struct VerifyRequest {
    std::string ip;
    int port = 22;
    ProbeMode mode = ProbeMode::tcp;
    Expect expect = Expect::reachable;
    std::chrono::seconds timeout{300};
    std::chrono::seconds poll_interval{5};
};

struct VerifyResult {
    std::string ip;
    int port = 0;
    ProbeMode mode = ProbeMode::tcp;
    Expect expect = Expect::reachable;
    bool satisfied = false;
    bool answered = false;  // the last probe's outcome
    int attempts = 0;
    double seconds = 0;
    nlohmann::json to_json() const;
};

// Polls until the expectation holds (ok, satisfied) or the timeout passes
// (Code::timeout; `last` receives the result either way when given).
Result<VerifyResult> verify_reachability(Prober& prober, const Clock& clock, Sleeper& sleeper,
                                         const VerifyRequest& request,
                                         VerifyResult* last = nullptr);

}  // namespace vmlift
