#include "squadron/control/desired_store.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace squadron::control {

namespace {

// `warning` about `file`, with where its unreadable copy is kept.
void keep_aside(const std::filesystem::path& file, std::string& warning) {
  const auto kept = keep_corrupt(file);
  if (!kept.empty()) warning += fmt::format(" (the file as it was: {})", kept.string());
}

}  // namespace

DesiredScale FileDesiredStore::load_scale(std::string& warning) {
  auto saved = load_desired(scale_file_, warning);
  if (!warning.empty()) keep_aside(scale_file_, warning);
  return saved;
}

std::optional<Histories> FileDesiredStore::load_revisions(const std::vector<ServiceSpec>& services,
                                                          std::string& warning) {
  std::ifstream in(revisions_file_);
  if (!in) return std::nullopt;  // the first start: the manifest is revision 1
  std::stringstream text;
  text << in.rdbuf();
  auto saved = parse_revisions(text.str(), services, warning);
  if (!warning.empty()) {
    warning = fmt::format("{}: {}; those services start from the manifest",
                          revisions_file_.string(), warning);
    keep_aside(revisions_file_, warning);
  }
  return saved;
}

std::error_code FileDesiredStore::save_scale(const DesiredScale& scale) {
  return save_desired(scale_file_, scale);
}

std::error_code FileDesiredStore::save_revisions(const Histories& histories) {
  return write_file_atomic(revisions_file_, revisions_json(histories));
}

DesiredScale EtcdDesiredStore::load_scale(std::string& warning) {
  if (scale_text_.empty()) return {};
  return parse_desired(scale_text_, scale_key(root_), warning);
}

std::optional<Histories> EtcdDesiredStore::load_revisions(const std::vector<ServiceSpec>& services,
                                                          std::string& warning) {
  if (revisions_text_.empty()) return std::nullopt;
  auto saved = parse_revisions(revisions_text_, services, warning);
  if (!warning.empty()) {
    warning = fmt::format("{}: {}; those services start from the manifest", revisions_key(root_),
                          warning);
  }
  return saved;
}

std::error_code EtcdDesiredStore::save_scale(const DesiredScale& scale) {
  scale_text_ = desired_json(scale);
  write_(scale_key(root_), scale_text_);
  return {};
}

std::error_code EtcdDesiredStore::save_revisions(const Histories& histories) {
  revisions_text_ = revisions_json(histories);
  write_(revisions_key(root_), revisions_text_);
  return {};
}

}  // namespace squadron::control
