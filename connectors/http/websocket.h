// A WebSocket client (RFC 6455) on a libcurl connection: Debian 12's libcurl
// has no WebSocket support, so curl does TCP and TLS (CURLOPT_CONNECT_ONLY,
// with the TLS policies of curl_http.h) and this layer does the rest.
//
// Contract
//   connect() opens ws:// or wss:// URL, sends the upgrade request with a
//   random Sec-WebSocket-Key and checks the answer: status 101, `Upgrade:
//   websocket`, `Connection: Upgrade`, and Sec-WebSocket-Accept equal to
//   base64(SHA-1(key + RFC GUID)). Anything else is remote_failed naming
//   what was wrong (the status line for a refused upgrade).
//   send_text()/send_binary() send one message as one masked frame.
//   receive() returns the next whole data message: continuation frames are
//   joined, pings answered with pongs, pongs dropped. A message (or the
//   sum of its fragments) over max_message fails the connection with close
//   code 1009; invalid UTF-8 in a text message with 1007; protocol errors
//   (masked server frames, bad opcodes, fragmented or oversized control
//   frames, continuation without a start) with 1002. A close frame from the
//   server is answered and reported as connection_lost carrying its code and
//   reason ("closed by the server: 4001 bye"). No message before the
//   deadline is Code::timeout (the connection stays usable).
//   ping() sends a ping; close() sends a close frame and waits briefly for
//   the server's.
//   is_loopback_host() is true for 127.0.0.0/8, ::1 and "localhost": the only
//   hosts to which callers may send a secret over plain ws://.
// Thread safety: none; one thread uses a connection at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "connectors/http/curl_http.h"
#include "engine/status.h"

namespace vmlift::http {

struct WsOptions {
    std::string url;  // ws://HOST[:PORT]/PATH or wss://...
    TlsOptions tls;
    std::chrono::seconds connect_timeout{15};
    size_t max_message = 64u << 20;
};

enum class WsKind { text, binary };

struct WsMessage {
    WsKind kind = WsKind::text;
    std::string data;
};

class WebSocket {
  public:
    static Result<std::unique_ptr<WebSocket>> connect(const WsOptions& options);
    ~WebSocket();
    WebSocket(const WebSocket&) = delete;
    WebSocket& operator=(const WebSocket&) = delete;

    Status send_text(std::string_view text);
    Status send_binary(std::string_view data);
    Status ping(std::string_view payload = {});
    Result<WsMessage> receive(std::chrono::milliseconds timeout);
    Status close(uint16_t code = 1000, const std::string& reason = {});
    bool is_open() const;

    // For tests: send one raw frame (fin, opcode, payload), masked.
    Status send_frame(bool fin, uint8_t opcode, std::string_view payload);

  private:
    WebSocket();
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

bool is_loopback_host(const std::string& host);

// Splits ws[s]://HOST[:PORT]/PATH; invalid_input when it is not one.
struct WsUrl {
    bool tls = false;
    std::string host;
    int port = 0;
    std::string path;
};
Result<WsUrl> parse_ws_url(const std::string& url);

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string websocket_accept(const std::string& key);

}  // namespace vmlift::http
