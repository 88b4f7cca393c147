// Request validation and the shapes of errors and SSE frames.
#include "openai_test.h"

#include <QtTest>

#include "openai/openai.h"

using namespace spillway::openai;

namespace {

ApiError errorOf(Endpoint ep, const std::string& body) {
  RequestParser p;
  auto r = p.parse(ep, body);
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  return ApiError{0, "parsed", "", "", ""};
}

ParsedRequest parsed(Endpoint ep, const std::string& body) {
  RequestParser p;
  auto r = p.parse(ep, body);
  if (auto* e = std::get_if<ApiError>(&r)) qFatal("unexpected error: %s", e->message.c_str());
  return std::get<ParsedRequest>(r);
}

}  // namespace

void OpenAiTest::routes() {
  QCOMPARE(endpointForTarget("/v1/chat/completions"), std::optional(Endpoint::kChatCompletions));
  QCOMPARE(endpointForTarget("/v1/completions?x=1"), std::optional(Endpoint::kCompletions));
  QVERIFY(!endpointForTarget("/v1/embeddings"));
}

void OpenAiTest::parsesChat() {
  auto r = parsed(Endpoint::kChatCompletions,
                  R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":7,
                     "messages":[{"role":"system","content":"be brief"},
                                 {"role":"user","content":[{"type":"text","text":"hello world"}]}]})");
  QCOMPARE(r.model, "m");
  QVERIFY(r.stream);
  QVERIFY(r.include_usage);
  QCOMPARE(*r.max_tokens, 7u);
  QCOMPARE(r.message_count, 2u);
  QVERIFY(r.prompt_text.find("hello world") != std::string::npos);
  // "be brief" = 1+2, "hello world" = 2+2 (ceil(len/4) per word), plus 3 per message and 3.
  QCOMPARE(promptTokens(r), 7u + 2 * 3 + 3);
}

void OpenAiTest::parsesCompletions() {
  auto r = parsed(Endpoint::kCompletions, R"({"model":"m","prompt":["ab cd",[1,2,3],4],"max_completion_tokens":2})");
  QCOMPARE(promptTokens(r), 2u + 3 + 1);
  QCOMPARE(*r.max_tokens, 2u);
}

void OpenAiTest::rejectsBadRequests_data() {
  QTest::addColumn<int>("endpoint");
  QTest::addColumn<QString>("body");
  QTest::addColumn<QString>("param");
  QTest::addColumn<QString>("code");
  const int chat = 0, comp = 1;
  QTest::newRow("not json") << chat << "{nope" << "" << "invalid_json";
  QTest::newRow("not object") << chat << "[1]" << "" << "invalid_json";
  QTest::newRow("no model") << chat << R"({"messages":[]})" << "model" << "missing_required_parameter";
  QTest::newRow("model type") << chat << R"({"model":5,"messages":[]})" << "model" << "invalid_type";
  QTest::newRow("empty model") << chat << R"({"model":"","messages":[]})" << "model" << "invalid_value";
  QTest::newRow("no messages") << chat << R"({"model":"m"})" << "messages" << "missing_required_parameter";
  QTest::newRow("messages type") << chat << R"({"model":"m","messages":{}})" << "messages" << "invalid_type";
  QTest::newRow("empty messages") << chat << R"({"model":"m","messages":[]})" << "messages" << "invalid_value";
  QTest::newRow("no role") << chat << R"({"model":"m","messages":[{"content":"x"}]})" << "messages[0].role" << "missing_required_parameter";
  QTest::newRow("bad role") << chat << R"({"model":"m","messages":[{"role":"x","content":"x"}]})" << "messages[0].role" << "invalid_value";
  QTest::newRow("no content") << chat << R"({"model":"m","messages":[{"role":"user"}]})" << "messages[0].content" << "missing_required_parameter";
  QTest::newRow("content type") << chat << R"({"model":"m","messages":[{"role":"user","content":3}]})" << "messages[0].content" << "invalid_type";
  QTest::newRow("stream type") << chat << R"({"model":"m","stream":"yes","messages":[{"role":"user","content":""}]})" << "stream" << "invalid_type";
  QTest::newRow("stream_options without stream") << chat << R"({"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":""}]})" << "stream_options" << "invalid_value";
  QTest::newRow("max_tokens zero") << chat << R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":""}]})" << "max_tokens" << "invalid_value";
  QTest::newRow("max_tokens float") << chat << R"({"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":""}]})" << "max_tokens" << "invalid_type";
  QTest::newRow("no prompt") << comp << R"({"model":"m"})" << "prompt" << "missing_required_parameter";
  QTest::newRow("prompt type") << comp << R"({"model":"m","prompt":{}})" << "prompt" << "invalid_type";
  QTest::newRow("prompt element") << comp << R"({"model":"m","prompt":[true]})" << "prompt[0]" << "invalid_type";
}

void OpenAiTest::rejectsBadRequests() {
  QFETCH(int, endpoint);
  QFETCH(QString, body);
  QFETCH(QString, param);
  QFETCH(QString, code);
  auto e = errorOf(endpoint == 0 ? Endpoint::kChatCompletions : Endpoint::kCompletions, body.toStdString());
  QCOMPARE(e.status, 400);
  QCOMPARE(QString::fromStdString(e.param), param);
  QCOMPARE(QString::fromStdString(e.code), code);
  QCOMPARE(e.type, "invalid_request_error");
  QVERIFY(!e.message.empty());
}

void OpenAiTest::parserIsReusable() {
  RequestParser p;
  QVERIFY(std::holds_alternative<ApiError>(p.parse(Endpoint::kChatCompletions, "{bad")));
  const std::string good = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
  QVERIFY(std::holds_alternative<ParsedRequest>(p.parse(Endpoint::kChatCompletions, good)));
}

void OpenAiTest::errorBodyShape() {
  const std::string with_param =
      R"({"error":{"message":"no \"x\"","type":"invalid_request_error","param":"model","code":"model_not_found"}})";
  const std::string with_nulls = R"({"error":{"message":"busy","type":"server_error","param":null,"code":null}})";
  QCOMPARE(errorBody({404, "no \"x\"", "invalid_request_error", "model", "model_not_found"}), with_param);
  QCOMPARE(errorBody({503, "busy", "server_error", "", ""}), with_nulls);
}

void OpenAiTest::tokenizer() {
  QCOMPARE(countTokens(""), 0u);
  QCOMPARE(countTokens("a"), 1u);
  QCOMPARE(countTokens("abcd efghi"), 1u + 2u);
  QCOMPARE(countTokens("  spaced\n\tout  "), 2u + 1u);
}

QTEST_APPLESS_MAIN(OpenAiTest)
