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
  QCOMPARE(endpointForTarget("/v1/embeddings"), std::optional(Endpoint::kEmbeddings));
  QCOMPARE(endpointForTarget("/v1/responses"), std::optional(Endpoint::kResponses));
  QCOMPARE(endpointForTarget("/v1/responses/resp_1/cancel"), std::optional(Endpoint::kResponseById));
  QCOMPARE(responseIdOfTarget("/v1/responses/resp_1/cancel?x=1"), "resp_1");
  QCOMPARE(responseIdOfTarget("/v1/responses/"), "");
  QVERIFY(!endpointForTarget("/v1/rerank"));  // passthrough routes are the config's
  QCOMPARE(endpointByName("embeddings"), std::optional(Endpoint::kEmbeddings));
  QVERIFY(!endpointByName("chat"));
}

void OpenAiTest::parsesEmbeddingsAndResponses() {
  auto e = parsed(Endpoint::kEmbeddings, R"({"model":"m","input":["ab cd",[1,2,3],"efgh"],"dimensions":8})");
  QCOMPARE(e.input_count, 3u);
  QVERIFY(e.deterministic);
  QCOMPARE(promptTokens(e), 2u + 3 + 1);
  QCOMPARE(parsed(Endpoint::kEmbeddings, R"({"model":"m","input":[1,2,3]})").input_count, 1u);  // one token array
  QCOMPARE(parsed(Endpoint::kEmbeddings, R"({"model":"m","input":"x"})").input_count, 1u);
  QCOMPARE(errorOf(Endpoint::kEmbeddings, R"({"model":"m","input":[["a"]]})").param, "input[0]");
  QCOMPARE(errorOf(Endpoint::kEmbeddings, R"({"model":"m","input":""})").param, "input");
  QCOMPARE(errorOf(Endpoint::kEmbeddings, R"({"model":"m","input":"x","dimensions":-1})").param, "dimensions");

  auto r = parsed(Endpoint::kResponses, R"({"model":"m","input":[{"role":"user","content":"hi there"},
      {"role":"user","content":[{"type":"input_text","text":"more"}]}],"instructions":"be kind",
      "max_output_tokens":9,"previous_response_id":"resp_7","stream":true})");
  QCOMPARE(r.previous_response_id, "resp_7");
  QCOMPARE(*r.max_tokens, 9u);
  QVERIFY(r.stream);
  QVERIFY(!r.deterministic);  // never cached
  QVERIFY(r.prompt_text.find("more") != std::string::npos && r.prompt_text.find("be kind") != std::string::npos);
  QCOMPARE(parsed(Endpoint::kResponses, R"({"model":"m","input":"plain"})").prompt_text, "plain");
  QCOMPARE(errorOf(Endpoint::kResponses, R"({"model":"m","input":7})").param, "input");
  QCOMPARE(errorOf(Endpoint::kResponses, R"({"model":"m","previous_response_id":3})").param, "previous_response_id");
  QCOMPARE(errorOf(Endpoint::kResponses, R"({"input":"x"})").code, "missing_required_parameter");
}

void OpenAiTest::passthroughReadsOnlyTheModel() {
  RequestParser p;
  auto json = std::get<ParsedRequest>(p.parse(Endpoint::kPassthrough, R"({"model":"r","query":"q","stream":true})"));
  QCOMPARE(json.model, "r");
  QVERIFY(json.stream);
  // Not JSON, not a form: no model (the route stage decides), never an error.
  QCOMPARE(std::get<ParsedRequest>(p.parse(Endpoint::kPassthrough, "plain text")).model, "");
  const std::string form =
      "--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model\"\r\n\r\nname=\"model\"\r\n"
      "--b1\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b1--\r\n";
  auto multi = std::get<ParsedRequest>(p.parse(Endpoint::kPassthrough, form, false, "multipart/form-data; boundary=b1"));
  QCOMPARE(multi.model, "whisper-1");  // the field, not the file named "model" nor its bytes
  QVERIFY(multi.multipart);
  QCOMPARE(multipartField("multipart/form-data; boundary=\"b1\"", form, "file").value_or("?"), "name=\"model\"");
  QVERIFY(!multipartField("multipart/form-data", form, "model"));               // no boundary
  QVERIFY(!multipartField("multipart/form-data; boundary=b1", "--b1\r\n", "model"));  // truncated
}

void OpenAiTest::streamErrorsSpeakTheEndpointsDialect() {
  const ApiError e{502, "broke", "upstream_error", "", "upstream_disconnected"};
  QCOMPARE(streamErrorEvent(Endpoint::kChatCompletions, e), sseData(errorBody(e)));
  const std::string typed = streamErrorEvent(Endpoint::kResponses, e);
  QVERIFY(typed.starts_with("event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_disconnected\""));
  QVERIFY(typed.ends_with("\n\n"));
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
  QVERIFY(!r.structured);
  // A caller that parses the answer: tools or functions offered, or a
  // response_format other than text.
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  auto chat = [&](const std::string& extra) { return parsed(Endpoint::kChatCompletions, "{\"model\":\"m\"," + msgs + extra + "}"); };
  QVERIFY(chat(R"(,"tools":[{"type":"function","function":{"name":"f"}}])").structured);
  QVERIFY(chat(R"(,"functions":[{"name":"f"}])").structured);
  QVERIFY(chat(R"(,"response_format":{"type":"json_object"})").structured);
  QVERIFY(chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x"}})").structured);
  QVERIFY(!chat(R"(,"response_format":{"type":"text"})").structured);
  QVERIFY(!chat(R"(,"tools":[])").structured);
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
