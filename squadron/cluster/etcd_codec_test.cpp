// etcd's JSON gateway as values: the bodies Squadron sends, and the answers etcd 3.4 gives (copied
// from a real member's answers, keys and values base64, 64-bit numbers as strings).
#include "squadron/cluster/etcd_codec.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace squadron::cluster {
namespace {
namespace json = boost::json;

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    const auto text = base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    const auto back = base64_decode(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<char>(i * 37));
  }
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("ba"), "YmE=");
  EXPECT_EQ(*base64_decode("YmFy"), "bar");
}

TEST(Base64, RefusesWhatIsNotCanonical) {
  for (const char* bad :
       {"Zm9", "Zm9v=", " Zm9v", "Zm9v ", "Zm=v", "Z===", "Zm9!", "YmF=", "YQ==YQ==", "Zm9v\n"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

TEST(PrefixEnd, IsTheFirstKeyPastThePrefix) {
  EXPECT_EQ(prefix_end("/squadron/"), "/squadron0");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

TEST(Requests, CarryKeysBase64AndNumbersAsStrings) {
  auto put = json::parse(put_body("/k", "v", 7587)).as_object();
  EXPECT_EQ(put["key"], "L2s=");
  EXPECT_EQ(put["value"], "dg==");
  EXPECT_EQ(put["lease"], "7587");
  EXPECT_FALSE(json::parse(put_body("/k", "v")).as_object().contains("lease"));

  auto range = json::parse(range_body("/a/", prefix_end("/a/"), 12, 5)).as_object();
  EXPECT_EQ(*base64_decode(range["range_end"].as_string()), "/a0");
  EXPECT_EQ(range["revision"], "12");
  EXPECT_EQ(range["limit"], "5");

  auto watch = json::parse(watch_body("/a/", "/a0", 40, true)).as_object();
  auto& create = watch["create_request"].as_object();
  EXPECT_EQ(create["start_revision"], "40");
  EXPECT_EQ(create["prev_kv"], true);

  EXPECT_EQ(json::parse(lease_grant_body(10)).as_object()["TTL"], "10");
  EXPECT_EQ(json::parse(lease_id_body(2324035774427945223)).as_object()["ID"],
            "2324035774427945223");
}

TEST(Requests, ATransactionSaysEachComparisonAndBranch) {
  Compare first_leader;
  first_leader.key = "/leader";
  first_leader.target = Compare::Target::kCreate;
  first_leader.number = 0;
  Operation put;
  put.kind = Operation::Kind::kPut;
  put.key = "/leader";
  put.value = "s1";
  put.lease = 9;
  Operation read;
  read.key = "/leader";
  const std::vector<Compare> cmp{first_leader};
  const std::vector<Operation> yes{put}, no{read};
  auto t = json::parse(txn_body(cmp, yes, no)).as_object();
  auto& c = t["compare"].as_array()[0].as_object();
  EXPECT_EQ(c["target"], "CREATE");
  EXPECT_EQ(c["result"], "EQUAL");
  EXPECT_EQ(c["create_revision"], "0");
  auto& sent = t["success"].as_array()[0].as_object()["request_put"].as_object();
  EXPECT_EQ(sent["lease"], "9");
  EXPECT_TRUE(t["failure"].as_array()[0].as_object().contains("request_range"));
}

TEST(Answers, ARangeReadsItsKeysAndRevisions) {
  const auto r = parse_range_answer(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952",)"
      R"("revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2",)"
      R"("mod_revision":"2","version":"1","value":"YmFy","lease":"77"}],"count":"1"})");
  ASSERT_FALSE(r.has_error()) << r.error().message;
  EXPECT_EQ(r->header.revision, 2);
  EXPECT_EQ(r->header.member_id, 3319814642761637952u);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "foo");
  EXPECT_EQ(r->kvs[0].value, "bar");
  EXPECT_EQ(r->kvs[0].lease, 77);
  EXPECT_EQ(r->count, 1);
  // An empty range leaves kvs and count out.
  const auto empty = parse_range_answer(R"({"header":{"revision":"6"}})");
  ASSERT_FALSE(empty.has_error());
  EXPECT_TRUE(empty->kvs.empty());
  EXPECT_EQ(empty->count, 0);
}

TEST(Answers, AnErrorBodyIsAnErrorWithEtcdsMessage) {
  const auto r = parse_header_answer(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().code, EtcdErrc::kLeaseNotFound);
  EXPECT_NE(r.error().message.find("requested lease not found"), std::string::npos);

  const auto no_leader = parse_range_answer(
      R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
  ASSERT_TRUE(no_leader.has_error());
  EXPECT_EQ(no_leader.error().code, EtcdErrc::kRejected);
  EXPECT_EQ(no_leader.error().grpc_code, 14);
}

TEST(Answers, ATransactionSaysWhichBranchRanAndWhatItRead) {
  const auto won = parse_txn_answer(
      R"({"header":{"revision":"5"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"5"}}}]})");
  ASSERT_FALSE(won.has_error());
  EXPECT_TRUE(won->succeeded);
  ASSERT_EQ(won->responses.size(), 1u);
  EXPECT_TRUE(won->responses[0].empty());
  const auto lost = parse_txn_answer(
      R"({"header":{"revision":"5"},"responses":[{"response_range":{"header":{"revision":"5"},)"
      R"("kvs":[{"key":"bGVhZGVy","create_revision":"5","mod_revision":"5","version":"1","value":"cw=="}],"count":"1"}}]})");
  ASSERT_FALSE(lost.has_error());
  EXPECT_FALSE(lost->succeeded);
  ASSERT_EQ(lost->responses[0].size(), 1u);
  EXPECT_EQ(lost->responses[0][0].key, "leader");
  EXPECT_EQ(lost->responses[0][0].value, "s");
}

TEST(Answers, AKeepaliveOfALeaseThatIsGoneIsLeaseNotFound) {
  const auto alive = parse_lease_answer(
      R"({"result":{"header":{"revision":"3"},"ID":"2324035774427945227","TTL":"5"}})");
  ASSERT_FALSE(alive.has_error());
  EXPECT_EQ(alive->id, 2324035774427945227);
  EXPECT_EQ(alive->ttl, 5);
  const auto gone = parse_lease_answer(R"({"result":{"header":{"revision":"3"},"ID":"123"}})");
  ASSERT_TRUE(gone.has_error());
  EXPECT_EQ(gone.error().code, EtcdErrc::kLeaseNotFound);
  const auto grant = parse_lease_answer(R"({"header":{"revision":"2"},"ID":"9","TTL":"10"})");
  ASSERT_FALSE(grant.has_error());
  EXPECT_EQ(grant->ttl, 10);
}

TEST(Answers, AWatchLineReadsPutsDeletesAndCompaction) {
  const auto created = parse_watch_line(R"({"result":{"header":{"revision":"2"},"created":true}})");
  ASSERT_FALSE(created.has_error());
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(created->events.empty());

  const auto events = parse_watch_line(
      R"({"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"YQ==","create_revision":"8",)"
      R"("mod_revision":"8","version":"1","value":"Yg=="}},{"type":"DELETE","kv":{"key":"YQ==",)"
      R"("mod_revision":"9"},"prev_kv":{"key":"YQ==","value":"Yg==","mod_revision":"8"}}]}})");
  ASSERT_FALSE(events.has_error()) << events.error().message;
  ASSERT_EQ(events->events.size(), 2u);
  EXPECT_EQ(events->events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events->events[0].kv.value, "b");
  EXPECT_EQ(events->events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events->events[1].kv.mod_revision, 9);
  ASSERT_TRUE(events->events[1].prev.has_value());
  EXPECT_EQ(events->events[1].prev->value, "b");

  const auto compacted = parse_watch_line(
      R"({"result":{"header":{"revision":"90"},"canceled":true,"compact_revision":"50"}})");
  ASSERT_FALSE(compacted.has_error());
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compact_revision, 50);
}

TEST(Answers, WhatIsNotTheApiIsMalformedNeverAThrow) {
  for (const char* bad :
       {"", "nope", "[]", R"({"header":[]})", R"({"header":{"revision":"x"}})",
        R"({"header":{"revision":"99999999999999999999"}})", R"({"kvs":[{"key":"!!"}]})",
        R"({"kvs":{}})", R"({"result":{"events":[{"type":"MOVE","kv":{}}]}})",
        R"({"result":{"events":[{"type":"PUT"}]}})", R"({"result":5})", R"({"succeeded":"yes"})"}) {
    EXPECT_EQ(parse_range_answer(bad).has_error() || parse_watch_line(bad).has_error() ||
                  parse_txn_answer(bad).has_error(),
              true)
        << bad;
  }
  EXPECT_EQ(parse_range_answer("nope").error().code, EtcdErrc::kMalformed);
  EXPECT_EQ(parse_watch_line(R"({"header":{}})").error().code, EtcdErrc::kMalformed);
  EXPECT_EQ(parse_range_answer(R"({"kvs":[{"key":"!!"}]})").error().code, EtcdErrc::kMalformed);
}

}  // namespace
}  // namespace squadron::cluster
