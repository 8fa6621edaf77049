// POSIX shell quoting: the one function that turns an argv vector into a
// remote command line.
//
// Contract
//   shell_quote(arg) returns a word that any POSIX shell (dash, bash, busybox
//   ash, zsh in sh mode) parses back into exactly `arg`, byte for byte, for
//   every byte string without NUL (argv cannot hold NUL): quotes,
//   backslashes, `$`, backticks, newlines, globs, leading `-`/`~`, empty
//   strings and non-UTF-8 bytes included. Safe words are left bare so logs
//   stay readable; everything else is single-quoted with `'` spelled `'\''`.
//   shell_join(argv) quotes each element and joins them with one space.
//   Both reject (return an invalid_input Status) an argument containing NUL
//   or an empty argv.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace vmlift {

std::string shell_quote(std::string_view arg);

Result<std::string> shell_join(const std::vector<std::string>& argv);

}  // namespace vmlift
