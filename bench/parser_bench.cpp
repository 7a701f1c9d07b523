// Microbenchmark: parsing typical requests with Squadron's parser vs Boost.Beast's
// request_parser (the peer we would otherwise use). See docs/decisions/0001-own-http-parser.md.
//   build/bin/parser_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "squadron/http/parser.hpp"
#include "squadron/http/request.hpp"

namespace {

// wrk's request, and a browser-like one with more headers.
constexpr std::string_view kWrk = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
constexpr std::string_view kBrowser =
    "GET /api/users/42?fields=name,email HTTP/1.1\r\nHost: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: application/json, text/plain, */*\r\nAccept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    "X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n"
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";

void squadron_parse(benchmark::State& state, std::string_view raw) {
  squadron::http::Request req;
  squadron::http::RequestParser parser;
  for (auto _ : state) {
    auto r = parser.feed(raw, req);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(req.path());
    parser.reset(req);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * raw.size()));
}

void beast_parse(benchmark::State& state, std::string_view raw) {
  namespace http = boost::beast::http;
  for (auto _ : state) {
    // Beast's parser is single-use: one per message, as its server examples do.
    http::request_parser<http::string_body> parser;
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(raw.data(), raw.size()), ec);
    benchmark::DoNotOptimize(parser.get().target());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * raw.size()));
}

BENCHMARK_CAPTURE(squadron_parse, wrk, kWrk);
BENCHMARK_CAPTURE(beast_parse, wrk, kWrk);
BENCHMARK_CAPTURE(squadron_parse, browser, kBrowser);
BENCHMARK_CAPTURE(beast_parse, browser, kBrowser);

}  // namespace

BENCHMARK_MAIN();
