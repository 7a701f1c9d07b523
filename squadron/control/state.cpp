#include "squadron/control/state.hpp"

#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

namespace squadron::control {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::optional<std::string> read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<json::value> read_json(const fs::path& file, std::string& why) {
  const auto text = read_file(file);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  auto v = json::parse(*text, ec);
  if (ec) {
    why = file.string() + ": not JSON (" + ec.message() + ")";
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::error_code write_file_atomic(const fs::path& file, std::string_view content, mode_t mode) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return ec;
  const fs::path tmp = file.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return last_error();
  ::fchmod(fd, mode);  // whatever the umask said
  if (!write_all(fd, content) || ::fsync(fd) != 0) {
    ec = last_error();
    ::close(fd);
    ::unlink(tmp.c_str());
    return ec;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    ec = last_error();
    ::unlink(tmp.c_str());
    return ec;
  }
  const int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);  // the rename itself survives a crash
    ::close(dir);
  }
  return {};
}

std::error_code secure_state_dir(const StateDir& dir) {
  std::error_code ec;
  for (const auto& d : {dir.root, dir.logs()}) {
    fs::create_directories(d, ec);
    if (ec) return ec;
    fs::permissions(d, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) return ec;
  }
  for (auto it = fs::recursive_directory_iterator(dir.root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code perm_ec;
    if (it->is_symlink(perm_ec)) continue;
    fs::permissions(it->path(),
                    it->is_directory(perm_ec) ? fs::perms::owner_all
                                              : fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace, perm_ec);
  }
  return {};
}

fs::path keep_corrupt(const fs::path& file) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  fs::path copy = file.string() + ".corrupt-" + stamp;
  for (int n = 2; fs::exists(copy); ++n)
    copy = file.string() + ".corrupt-" + stamp + "-" + std::to_string(n);
  const auto text = read_file(file);
  if (!text || write_file_atomic(copy, *text, 0600)) return {};
  return copy;
}

std::optional<std::string> read_token(const fs::path& file) {
  auto text = read_file(file);
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (text->size() < 32) return std::nullopt;
  return text;
}

std::optional<std::string> load_or_create_token(const fs::path& file, std::error_code& ec) {
  ec.clear();
  if (auto t = read_token(file)) {
    ::chmod(file.c_str(), 0600);
    return t;
  }
  unsigned char raw[32];
  std::size_t got = 0;
  while (got < sizeof raw) {
    const ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      return std::nullopt;
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char c : raw) {
    token += kHex[c >> 4];
    token += kHex[c & 15];
  }
  // Written beside, then linked into place only if no token is there yet: two processes that
  // start together (a cluster's servers sharing the folder) end with one token, the first's.
  std::error_code dir_ec;
  fs::create_directories(file.parent_path(), dir_ec);
  const fs::path tmp = file.string() + ".new." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    ec = last_error();
    return std::nullopt;
  }
  const std::string text = token + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ec = written ? std::error_code{} : last_error();
  ::close(fd);
  if (written && ::link(tmp.c_str(), file.c_str()) != 0) {
    if (errno != EEXIST) ec = last_error();
  }
  ::unlink(tmp.c_str());
  if (ec) return std::nullopt;
  if (auto t = read_token(file)) return t;  // ours, or the one that was first
  ec = std::make_error_code(std::errc::io_error);
  return std::nullopt;
}

DesiredScale load_desired(const fs::path& file, std::string& warning) {
  warning.clear();
  const auto text = read_file(file);
  if (!text) return {};
  return parse_desired(*text, file.string(), warning);
}

DesiredScale parse_desired(std::string_view text, std::string_view name, std::string& warning) {
  DesiredScale out;
  warning.clear();
  boost::system::error_code ec;
  const auto v = json::parse(text, ec);
  if (ec) {
    warning = std::string(name) + ": not JSON (" + ec.message() + "); ignored";
    return out;
  }
  const auto* services = v.is_object() ? v.as_object().if_contains("services") : nullptr;
  if (services == nullptr || !services->is_object()) {
    warning = std::string(name) + ": no \"services\" object; ignored";
    return out;
  }
  for (const auto& [service, entry] : services->as_object()) {
    const auto* o = entry.if_object();
    const auto* r = o != nullptr ? o->if_contains("replicas") : nullptr;
    const auto* m = o != nullptr ? o->if_contains("manifest_replicas") : nullptr;
    if (r == nullptr || m == nullptr || !r->is_int64() || !m->is_int64() || r->as_int64() < 0 ||
        r->as_int64() > 100000 || m->as_int64() < 0 || m->as_int64() > 100000) {
      warning = std::string(name) + ": services." + std::string(service) + " is malformed; ignored";
      continue;
    }
    out[std::string(service)] = {static_cast<int>(r->as_int64()), static_cast<int>(m->as_int64())};
  }
  return out;
}

std::string desired_json(const DesiredScale& desired) {
  json::object services;
  for (const auto& [name, s] : desired) {
    services[name] =
        json::object{{"replicas", s.replicas}, {"manifest_replicas", s.manifest_replicas}};
  }
  json::object root{{"version", 1}, {"services", std::move(services)}};
  return json::serialize(root) + "\n";
}

std::error_code save_desired(const fs::path& file, const DesiredScale& desired) {
  return write_file_atomic(file, desired_json(desired));
}

std::error_code save_run_info(const fs::path& file, const RunInfo& info) {
  json::object o{
      {"pid", info.pid}, {"control", info.control_url}, {"started_at_ms", info.started_at_ms}};
  return write_file_atomic(file, json::serialize(o) + "\n");
}

std::optional<RunInfo> load_run_info(const fs::path& file) {
  std::string why;
  const auto v = read_json(file, why);
  if (!v || !v->is_object()) return std::nullopt;
  const auto& o = v->as_object();
  const auto* pid = o.if_contains("pid");
  const auto* url = o.if_contains("control");
  if (pid == nullptr || url == nullptr || !pid->is_int64() || !url->is_string())
    return std::nullopt;
  RunInfo info;
  info.pid = static_cast<int>(pid->as_int64());
  info.control_url = url->as_string();
  if (const auto* t = o.if_contains("started_at_ms"); t != nullptr && t->is_int64())
    info.started_at_ms = t->as_int64();
  return info;
}

int try_lock(const fs::path& file, std::error_code& ec) {
  ec.clear();
  fs::create_directories(file.parent_path(), ec);
  if (ec) return -1;
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    ec = last_error();
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ec = last_error();
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace squadron::control
