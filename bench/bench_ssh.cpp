// vmlift-bench-ssh: pipe N bytes through `cat` on a host with one backend
// and print one JSON line with the throughput. Driven by bench/ssh_throughput.sh.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "connectors/ssh/ssh_factory.h"
#include "engine/pattern.h"

int main(int argc, char** argv) {
    using namespace vmlift;
    ignore_sigpipe();
    std::string host, key, known_hosts, backend_name = "openssh";
    uint64_t bytes = 2ULL << 30;
    CLI::App app{"pipe bytes through remote cat and report the throughput"};
    app.add_option("--host", host)->required();
    app.add_option("--identity-file", key)->required();
    app.add_option("--known-hosts", known_hosts)->required();
    app.add_option("--backend", backend_name)->check(CLI::IsMember({"openssh", "libssh2"}));
    app.add_option("--bytes", bytes);
    CLI11_PARSE(app, argc, argv);

    SshOptions o;
    o.target.host = host;
    o.auth.identity_file = key;
    o.known_hosts_file = known_hosts;
    o.env = default_tool_env();
    PosixProcessRunner runner;
    auto backend = parse_ssh_backend(backend_name);
    auto t = make_ssh_transport(*backend, o, runner);
    Status st = t->connect();
    if (!st.ok()) {
        std::cerr << st.to_string() << "\n";
        return 1;
    }
    PatternSource source(bytes, 99);
    HashingSink sink;
    auto t0 = std::chrono::steady_clock::now();
    auto exit = t->exec({"cat"}, RunIo{&source, &sink, nullptr});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!exit.ok() || !exit->success() || sink.digest() != source.digest()) {
        std::cerr << "transfer failed or corrupted\n";
        return 1;
    }
    nlohmann::json out = {{"backend", backend_name},
                          {"bytes", bytes},
                          {"seconds", secs},
                          {"mb_per_sec", static_cast<double>(bytes) / secs / 1e6}};
    std::cout << out.dump() << std::endl;
    return 0;
}
