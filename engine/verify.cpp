#include "engine/verify.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace vmlift {
namespace {

class Fd {
  public:
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return m_fd; }

  private:
    int m_fd;
};

struct Address {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_INET;
};

Result<Address> parse_address(const std::string& ip, int port) {
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        a.length = sizeof(sockaddr_in);
        a.family = AF_INET;
        return a;
    }
    if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        a.length = sizeof(sockaddr_in6);
        a.family = AF_INET6;
        return a;
    }
    return Status(Code::invalid_input,
                  "'" + ip + "' is not an IPv4 or IPv6 address; give the cutover IP itself");
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Result<bool> probe_tcp(const Address& a, std::chrono::milliseconds timeout) {
    Fd fd(::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        return Status(Code::io_error, std::string("socket: ") + std::strerror(errno));
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.storage), a.length) == 0) {
        return true;
    }
    if (errno != EINPROGRESS) {
        return false;  // refused, no route: not answering (yet)
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n <= 0) {
        return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0;
}

uint16_t checksum(const uint8_t* data, size_t len) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
    }
    if (len % 2) {
        sum += static_cast<uint32_t>(data[len - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

// One echo request and the wait for its reply. `raw`: a raw socket, which
// sees every ICMP packet (IPv4 ones with their IP header) and needs our own
// identifier; a ping socket gets only its own replies.
Result<bool> probe_icmp(const Address& a, std::chrono::milliseconds timeout) {
    const bool v6 = a.family == AF_INET6;
    const int proto = v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
    bool raw = false;
    int s = ::socket(a.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (s < 0) {
        s = ::socket(a.family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        raw = true;
    }
    if (s < 0) {
        return Status(Code::permission_denied,
                      "no ICMP socket: this user is outside net.ipv4.ping_group_range and not "
                      "root; widen the sysctl, run as root, or use --mode tcp");
    }
    Fd fd(s);
    static thread_local std::mt19937 rng{std::random_device{}()};
    const uint16_t ident = static_cast<uint16_t>(rng());
    const uint16_t seq = static_cast<uint16_t>(rng());
    uint8_t packet[64] = {};
    packet[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    packet[4] = static_cast<uint8_t>(ident >> 8);
    packet[5] = static_cast<uint8_t>(ident);
    packet[6] = static_cast<uint8_t>(seq >> 8);
    packet[7] = static_cast<uint8_t>(seq);
    std::memcpy(packet + 8, "vmlift-verify", 13);
    if (!v6) {
        uint16_t sum = checksum(packet, sizeof packet);
        packet[2] = static_cast<uint8_t>(sum >> 8);
        packet[3] = static_cast<uint8_t>(sum);
    }
    Address dst = a;
    reinterpret_cast<sockaddr_in*>(&dst.storage)->sin_port = 0;
    if (::sendto(fd.get(), packet, sizeof packet, 0,
                 reinterpret_cast<const sockaddr*>(&dst.storage), dst.length) < 0) {
        return false;  // no route: not answering
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    const uint8_t reply_type = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
            return false;
        }
        uint8_t buf[1500];
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        ssize_t n =
            ::recvfrom(fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n <= 0) {
            continue;
        }
        const uint8_t* icmp = buf;
        size_t len = static_cast<size_t>(n);
        if (raw && !v6) {
            size_t ihl = static_cast<size_t>(buf[0] & 0x0f) * 4;
            if (len < ihl + 8) {
                continue;
            }
            icmp += ihl;
            len -= ihl;
        }
        if (len < 8 || icmp[0] != reply_type) {
            continue;
        }
        uint16_t got_seq = static_cast<uint16_t>(icmp[6] << 8 | icmp[7]);
        uint16_t got_id = static_cast<uint16_t>(icmp[4] << 8 | icmp[5]);
        // A ping socket rewrites the identifier to its own port; it only
        // delivers its own replies, so the sequence is what to check.
        if (got_seq != seq || (raw && got_id != ident)) {
            continue;
        }
        bool same_peer =
            from.ss_family == a.family &&
            (v6 ? std::memcmp(&reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr,
                              &reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr,
                              sizeof(in6_addr)) == 0
                : reinterpret_cast<sockaddr_in*>(&from)->sin_addr.s_addr ==
                      reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr);
        if (same_peer) {
            return true;
        }
    }
}

const char* mode_name(ProbeMode m) {
    return m == ProbeMode::tcp ? "tcp" : "icmp";
}
const char* expect_name(Expect e) {
    return e == Expect::reachable ? "reachable" : "unreachable";
}

}  // namespace

Result<ProbeMode> parse_probe_mode(const std::string& text) {
    if (text == "tcp") {
        return ProbeMode::tcp;
    }
    if (text == "icmp") {
        return ProbeMode::icmp;
    }
    return Status(Code::invalid_input, "--mode '" + text + "': use tcp or icmp");
}

Result<Expect> parse_expect(const std::string& text) {
    if (text == "reachable") {
        return Expect::reachable;
    }
    if (text == "unreachable") {
        return Expect::unreachable;
    }
    return Status(Code::invalid_input, "--expect '" + text + "': use reachable or unreachable");
}

Result<bool> RealProber::probe(const std::string& ip, int port, ProbeMode mode,
                               std::chrono::milliseconds timeout) {
    if (mode == ProbeMode::tcp && (port <= 0 || port > 65535)) {
        return Status(Code::invalid_input, "port " + std::to_string(port) + " is not 1..65535");
    }
    auto address = parse_address(ip, port);
    if (!address.ok()) {
        return address.status();
    }
    return mode == ProbeMode::tcp ? probe_tcp(*address, timeout) : probe_icmp(*address, timeout);
}

nlohmann::json VerifyResult::to_json() const {
    return {{"ip", ip},
            {"port", mode == ProbeMode::tcp ? nlohmann::json(port) : nlohmann::json(nullptr)},
            {"mode", mode_name(mode)},
            {"expect", expect_name(expect)},
            {"satisfied", satisfied},
            {"answered", answered},
            {"attempts", attempts},
            {"seconds", seconds}};
}

Result<VerifyResult> verify_reachability(Prober& prober, const Clock& clock, Sleeper& sleeper,
                                         const VerifyRequest& request, VerifyResult* last) {
    VerifyResult r;
    r.ip = request.ip;
    r.port = request.port;
    r.mode = request.mode;
    r.expect = request.expect;
    const auto start = clock.steady();
    const auto deadline = start + request.timeout;
    const auto attempt_timeout = std::chrono::milliseconds(
        std::min<long long>(3000, std::max<long long>(500, request.poll_interval.count() * 1000)));
    for (;;) {
        auto answered = prober.probe(request.ip, request.port, request.mode, attempt_timeout);
        if (!answered.ok()) {
            return answered.status();
        }
        ++r.attempts;
        r.answered = *answered;
        r.satisfied = r.answered == (request.expect == Expect::reachable);
        r.seconds = std::chrono::duration<double>(clock.steady() - start).count();
        if (last) {
            *last = r;
        }
        if (r.satisfied) {
            return r;
        }
        if (clock.steady() + request.poll_interval > deadline) {
            std::string what = request.mode == ProbeMode::tcp
                                   ? request.ip + " port " + std::to_string(request.port) + " (tcp)"
                                   : request.ip + " (icmp)";
            return Status(Code::timeout,
                          what + " was still " + (r.answered ? "answering" : "not answering") +
                              " after " + std::to_string(request.timeout.count()) + " s (" +
                              std::to_string(r.attempts) + " attempts; expected " +
                              expect_name(request.expect) +
                              "); check the guest's console and network, or raise --timeout-sec");
        }
        sleeper.sleep(std::chrono::duration_cast<std::chrono::milliseconds>(request.poll_interval));
    }
}

}  // namespace vmlift
