// The shell data path: the classic dd | zstd | ssh pipeline (fallback and
// benchmark baseline), built from argv through the quoting function.
//
// Contract
//   Source:      dd if=SRC bs=4M iflag=fullblock | zstd -T0 -LEVEL -c
//   Destination: zstd -dc | dd of=DST bs=4M iflag=fullblock [conv=sparse]
//   conv=sparse is used only where skipped blocks read back as zeros (a file
//   destination, which dd truncates, or --dst-fresh); on a used block device
//   every block is written so stale data cannot survive. The destination
//   dd's byte count must equal the source size within one block, as the
//   original pipeline checks; otherwise the copy failed. Relay, direct and
//   auto behave as for the agent path. There is no per-chunk verification
//   and no resume: that is what the agent path adds.
#pragma once

#include "engine/stream.h"

namespace vmlift {

Result<StreamResult> run_shell_stream(SshTransport& src, SshTransport& dst,
                                      const StreamRequest& req, ProgressReporter* progress,
                                      Logger& log);

// Parses GNU dd's "N bytes (...) copied" summary; nullopt when absent.
std::optional<uint64_t> parse_dd_bytes(const std::string& dd_stderr);

}  // namespace vmlift
