// The dashboard's files (web/), compiled into the binary by cmake/EmbedFiles.cmake and served by
// the control API at / and /ui/<file>.
//
//   for (const auto& a : web_assets()) if (a.path == "app.js") answer(a.content_type, a.body);
//
// Thread safety: constant data.
#pragma once

#include <span>
#include <string_view>

namespace squadron::control {

struct WebAsset {
  std::string_view path;  // "index.html", "app.js", "style.css"
  std::string_view content_type;
  std::string_view body;
};

std::span<const WebAsset> web_assets() noexcept;

}  // namespace squadron::control
