// What a fleet keeps on disk, under `.squadron/` beside its manifest:
//
//   token        the bearer token of the control API (mode 0600), made by the first `up`
//   state.json   desired state that commands changed (scale), so a restarted `up` brings it back
//   revisions.json  each service's revisions (deploy, apply, rollback) and which one runs
//   run.json     where the running fleet's control API answers, and its pid
//   lock         held (flock) by the running `up`: one fleet per manifest folder
//   logs/        every instance's output, rotated; squadron.log for `up -d`
//
// Every write is atomic (temporary file, fsync, rename, fsync of the folder): a crash leaves
// the old file or the new one, never half of one.
//
// Thread safety: plain functions on files.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <system_error>

namespace squadron::control {

struct StateDir {
  std::filesystem::path root;  // <manifest dir>/.squadron
  explicit StateDir(const std::filesystem::path& manifest_dir) : root(manifest_dir / ".squadron") {}
  std::filesystem::path token() const { return root / "token"; }
  std::filesystem::path state() const { return root / "state.json"; }
  std::filesystem::path revisions() const { return root / "revisions.json"; }
  std::filesystem::path run() const { return root / "run.json"; }
  std::filesystem::path lock() const { return root / "lock"; }
  std::filesystem::path logs() const { return root / "logs"; }
};

// Writes `content` to `file` atomically with permissions `mode` (owner only by default: the
// state may hold environment values, which may be secrets).
std::error_code write_file_atomic(const std::filesystem::path& file, std::string_view content,
                                  mode_t mode = 0600);

// Makes `.squadron/` and its `logs/` (mode 0700) and brings what an earlier version left there
// to owner-only modes (directories 0700, files 0600). Errors: the directory cannot be made.
std::error_code secure_state_dir(const StateDir& dir);

// Keeps a copy of a state file that could not be read whole as `<file>.corrupt-<UTC time>`
// (0600) before the fleet writes it afresh; returns the copy's path, empty if it failed.
std::filesystem::path keep_corrupt(const std::filesystem::path& file);

// The token in `file`, or a new one (32 random bytes, hex) written there with mode 0600.
std::optional<std::string> load_or_create_token(const std::filesystem::path& file,
                                                std::error_code& ec);
// The token in `file`; nullopt if it is missing or unreadable.
std::optional<std::string> read_token(const std::filesystem::path& file);

// A replica count set by `scale`, with the manifest's count when it was set: if the manifest
// has changed that service's `replicas` since, the manifest wins (the user edited it last).
struct ScaleOverride {
  int replicas = 0;
  int manifest_replicas = 0;
};
using DesiredScale = std::map<std::string, ScaleOverride, std::less<>>;

// Missing file: empty. A file that cannot be read as a state: empty and `warning` says why.
DesiredScale load_desired(const std::filesystem::path& file, std::string& warning);
// The same from the file's text; `name` names it in the warning.
DesiredScale parse_desired(std::string_view text, std::string_view name, std::string& warning);
std::error_code save_desired(const std::filesystem::path& file, const DesiredScale& desired);
// What save_desired() writes, as text (a cluster keeps it in etcd).
std::string desired_json(const DesiredScale& desired);

// Where a running fleet answers.
struct RunInfo {
  int pid = 0;
  std::string control_url;  // "http://127.0.0.1:9900"
  long long started_at_ms = 0;
};
std::error_code save_run_info(const std::filesystem::path& file, const RunInfo& info);
std::optional<RunInfo> load_run_info(const std::filesystem::path& file);

// Takes the exclusive lock of `file` without waiting; returns its descriptor (close it to
// release), or -1 with `ec` (EWOULDBLOCK when another process holds it).
int try_lock(const std::filesystem::path& file, std::error_code& ec);

}  // namespace squadron::control
