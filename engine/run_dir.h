// Run directory: the place one run keeps everything it records.
//
// Contract
//   create() makes <base>/<yyyymmdd>-<6 hex>/ (mode 0700, parents as
//   needed) with a fresh random id, and writes `status` = "created".
//   open() attaches to an existing run directory (resume, status, rollback).
//   write_file() is atomic: a temp file in the same directory, fsync,
//   rename, fsync of the directory; a reader sees the old or the new file,
//   never a torn one. Files are created 0600 (logs and journals may hold
//   host names and paths users consider private).
//   Errors: io_error naming the path and the cause.
// Thread safety: distinct files may be written from several threads.
#pragma once

#include <string>

#include "engine/clock.h"
#include "engine/status.h"

namespace vmlift {

class RunDir {
  public:
    static Result<RunDir> create(const std::string& base, const Clock& clock);
    static Result<RunDir> open(const std::string& path);

    const std::string& path() const { return m_path; }
    const std::string& id() const { return m_id; }  // "20261123-a1b2c3"
    std::string file(const std::string& name) const { return m_path + "/" + name; }

    Status write_file(const std::string& name, const std::string& contents) const;
    Result<std::string> read_file(const std::string& name) const;
    Status set_status(const std::string& status) const {
        return write_file("status", status + "\n");
    }

  private:
    RunDir(std::string path, std::string id) : m_path(std::move(path)), m_id(std::move(id)) {}
    std::string m_path;
    std::string m_id;
};

// Atomic file replacement used by RunDir (and journals): temp, fsync, rename.
Status write_file_atomic(const std::string& path, const std::string& contents, unsigned mode);

// Creates `path` and its parents (like mkdir -p) with `mode` for new ones.
Status make_dirs(const std::string& path, unsigned mode);

}  // namespace vmlift
