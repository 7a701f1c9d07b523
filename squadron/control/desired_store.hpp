// Where the desired state persists: the replica counts commands set and each service's
// revisions. The reconciler reads it at start and writes it after each change, through this
// interface: today's implementation keeps files under `.squadron/`; the cluster issue adds one
// in etcd without touching the reconciler, the API or the gateway.
//
//   FileDesiredStore store{dir.state(), dir.revisions()};
//   Fleet fleet{io, runner, registry, clock, manifest, options, {.store = &store}};
//
// Thread safety: on the fleet's thread.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "squadron/control/revisions.hpp"
#include "squadron/control/state.hpp"

namespace squadron::control {

class DesiredStore {
 public:
  virtual ~DesiredStore() = default;
  // The saved replica counts; empty when none. `warning`: what could not be read (the unreadable
  // copy kept aside, named there).
  virtual DesiredScale load_scale(std::string& warning) = 0;
  // The saved histories of `services`; nullopt when nothing was ever saved. `warning` as above.
  virtual std::optional<Histories> load_revisions(const std::vector<ServiceSpec>& services,
                                                  std::string& warning) = 0;
  virtual std::error_code save_scale(const DesiredScale& scale) = 0;
  virtual std::error_code save_revisions(const Histories& histories) = 0;
  // Where it keeps them, for messages ("the file .squadron/state.json").
  virtual std::string where() const = 0;
};

// Atomic files (state.hpp's write_file_atomic), mode 0600: state.json and revisions.json.
class FileDesiredStore final : public DesiredStore {
 public:
  FileDesiredStore(std::filesystem::path scale_file, std::filesystem::path revisions_file)
      : scale_file_(std::move(scale_file)), revisions_file_(std::move(revisions_file)) {}
  DesiredScale load_scale(std::string& warning) override;
  std::optional<Histories> load_revisions(const std::vector<ServiceSpec>& services,
                                          std::string& warning) override;
  std::error_code save_scale(const DesiredScale& scale) override;
  std::error_code save_revisions(const Histories& histories) override;
  std::string where() const override { return scale_file_.parent_path().string(); }

 private:
  std::filesystem::path scale_file_;
  std::filesystem::path revisions_file_;
};

// In a cluster's etcd (keys.hpp: desired/scale, desired/revisions): read once when a server
// starts to lead (their values given here), written through `write`, which the leading server
// fences by its election (a server that no longer leads writes nothing).
class EtcdDesiredStore final : public DesiredStore {
 public:
  EtcdDesiredStore(std::string root, std::string scale_text, std::string revisions_text,
                   std::function<void(std::string key, std::string value)> write)
      : root_(std::move(root)),
        scale_text_(std::move(scale_text)),
        revisions_text_(std::move(revisions_text)),
        write_(std::move(write)) {}
  static std::string scale_key(std::string_view root) {
    return std::string(root) + "desired/scale";
  }
  static std::string revisions_key(std::string_view root) {
    return std::string(root) + "desired/revisions";
  }
  DesiredScale load_scale(std::string& warning) override;
  std::optional<Histories> load_revisions(const std::vector<ServiceSpec>& services,
                                          std::string& warning) override;
  std::error_code save_scale(const DesiredScale& scale) override;
  std::error_code save_revisions(const Histories& histories) override;
  std::string where() const override { return "etcd (" + root_ + "desired/)"; }

 private:
  std::string root_;
  std::string scale_text_;
  std::string revisions_text_;
  std::function<void(std::string, std::string)> write_;
};

// In memory, for tests (and what a fleet that saves nothing amounts to).
class MemoryDesiredStore final : public DesiredStore {
 public:
  DesiredScale load_scale(std::string&) override { return scale; }
  std::optional<Histories> load_revisions(const std::vector<ServiceSpec>&, std::string&) override {
    return revisions;
  }
  std::error_code save_scale(const DesiredScale& s) override {
    scale = s;
    ++saves;
    return {};
  }
  std::error_code save_revisions(const Histories& h) override {
    revisions = h;
    ++saves;
    return {};
  }
  std::string where() const override { return "memory"; }

  DesiredScale scale;
  std::optional<Histories> revisions;
  int saves = 0;
};

}  // namespace squadron::control
