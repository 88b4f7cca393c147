// Drives a Spillway gateway with the official OpenAI Node SDK, unmodified
// except for baseURL. Usage: node check.mjs http://127.0.0.1:PORT MODEL
// Prints one line per check and exits non-zero on the first failure.
import OpenAI from "openai";
import { check, gatewayClient } from "./sdk_client.mjs";

const [base, model, strictBase] = process.argv.slice(2);
const client = gatewayClient(base);

const models = await client.models.list();
check(models.data.some((m) => m.id === model), "models.list includes the model");

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Say hello" }],
  max_tokens: 6,
});
check(chat.object === "chat.completion", "chat completion object");
check(chat.choices[0].message.role === "assistant", "assistant message");
check(chat.usage.completion_tokens === 6 && chat.choices[0].finish_reason === "length", "max_tokens honoured");

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Stream please" }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let usage = null;
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
check(chunks > 2 && text.length > 0, "streamed chat deltas");
check(usage !== null && usage.completion_tokens > 0, "stream_options.include_usage");

const legacy = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 3 });
check(legacy.choices[0].text.length > 0 && legacy.usage.completion_tokens === 3, "legacy completions");

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  check(false, "unknown model raises");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.code === "model_not_found", "unknown model is NotFoundError(model_not_found)");
}
// Rate limits as the SDK sees them: a key allowed one request a minute.
const limited = gatewayClient(base, { apiKey: "sk-sdk-limited" });
await limited.chat.completions.create({ model, messages: [{ role: "user", content: "one" }], max_tokens: 2 });
try {
  await limited.chat.completions.create({ model, messages: [{ role: "user", content: "two" }], max_tokens: 2 });
  check(false, "over the limit raises");
} catch (e) {
  check(e instanceof OpenAI.RateLimitError && e.status === 429 && e.code === "rate_limit_exceeded",
        "over the limit is RateLimitError(rate_limit_exceeded)");
  check(Number(e.headers["retry-after"]) >= 1, "429 carries Retry-After");
  check(e.headers["x-ratelimit-remaining-requests"] === "0", "429 carries x-ratelimit-remaining-requests");
}
// The SDK's own retry honours Retry-After: a key allowed one request a
// second gets its second request through on the retry.
const patient = gatewayClient(base, { apiKey: "sk-sdk-patient", maxRetries: 3 });
await patient.chat.completions.create({ model, messages: [{ role: "user", content: "one" }], max_tokens: 2 });
const retried = await patient.chat.completions.create({ model, messages: [{ role: "user", content: "two" }], max_tokens: 2 });
check(retried.object === "chat.completion", "the SDK retried its 429 after Retry-After and got the answer");
// 401 and 503 as the SDK sees them, from an engine that requires keys and
// has no backend to serve (the optional third argument).
if (strictBase) {
  const ask = (apiKey) =>
    gatewayClient(strictBase, { apiKey }).chat.completions.create({
      model,
      messages: [{ role: "user", content: "x" }],
      max_tokens: 2,
    });
  try {
    await ask("sk-sdk-wrong");
    check(false, "an unknown key raises");
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === "invalid_api_key",
          "an unknown key is AuthenticationError(invalid_api_key)");
  }
  try {
    await ask("sk-sdk-strict");
    check(false, "no backend raises");
  } catch (e) {
    check(e instanceof OpenAI.InternalServerError && e.status === 503 && e.code === "no_backend",
          "no backend to serve is a 503 InternalServerError(no_backend)");
    check(Number(e.headers["retry-after"]) >= 1 && e.headers["x-spillway-drop-reason"] === "no_backend",
          "the 503 carries Retry-After and x-spillway-drop-reason");
  }
}
// The cache as the SDK sees it: a deterministic question answered by a
// stream is replayed from the cache as an equivalent stream (same deltas,
// usage, [DONE]) and as a JSON completion with the same content.
async function streamed(params) {
  const { data, response } = await client.chat.completions
    .create({ ...params, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  let content = "";
  let finish = null;
  let streamUsage = null;
  for await (const chunk of data) {
    if (chunk.choices.length > 0) {
      content += chunk.choices[0].delta.content ?? "";
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) streamUsage = chunk.usage;
  }
  return { content, finish, usage: streamUsage, cache: response.headers.get("x-spillway-cache") };
}
const question = { model, messages: [{ role: "user", content: "A cached question" }], temperature: 0, max_tokens: 8 };
const first = await streamed(question);
const again = await streamed(question);
check(first.cache === "miss" && again.cache === "hit", "a repeated deterministic stream is a cache hit");
check(again.content === first.content && again.finish === first.finish && again.content.length > 0,
      "the replayed stream has the original's content and finish reason");
check(again.usage && again.usage.completion_tokens === first.usage.completion_tokens, "the replayed stream has its usage");
const { data: whole, response: wholeResponse } = await client.chat.completions.create(question).withResponse();
check(wholeResponse.headers.get("x-spillway-cache") === "hit" && whole.choices[0].message.content === first.content,
      "the stream's entry answers the same question as a JSON completion");
// Embeddings: the SDK asks for base64 unless told otherwise and decodes it.
const close = (a, b) => a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]) < 1e-6);
const one = await client.embeddings.create({ model, input: "The quick brown fox" });
check(one.data.length === 1 && one.data[0].index === 0 && one.data[0].embedding.length === 64,
      "embeddings.create (one input, base64 decoded by the SDK)");
const inputs = ["alpha", "beta", "gamma", "The quick brown fox"];
const { data: many, response: manyResponse } = await client.embeddings.create({ model, input: inputs }).withResponse();
check(many.data.map((d) => d.index).join() === "0,1,2,3", "a batch's vectors come back in input order");
check(manyResponse.headers.get("x-spillway-cache-items") === "1/4", "the batch's known input came from the cache");
check(close(many.data[3].embedding, one.data[0].embedding) && !close(many.data[0].embedding, many.data[1].embedding),
      "each input has its own vector, the cached one included");
const floats = await client.embeddings.create({ model, input: inputs, encoding_format: "float" });
check(Array.isArray(floats.data[0].embedding) && close(floats.data[2].embedding, many.data[2].embedding),
      "float and base64 encodings agree");
// The Responses API: created, continued on the backend that stored it,
// streamed, read back and deleted.
const { data: made, response: madeResponse } = await client.responses
  .create({ model, input: "Tell me a story", max_output_tokens: 5 })
  .withResponse();
check(made.object === "response" && made.output_text.length > 0, "responses.create");
const owner = madeResponse.headers.get("x-spillway-backend");
let pinned = 0;
for (let i = 0; i < 4; i++) {
  const { response } = await client.responses
    .create({ model, input: "Go on", previous_response_id: made.id, max_output_tokens: 2 })
    .withResponse();
  if (response.headers.get("x-spillway-backend") === owner) pinned++;
}
check(pinned === 4, "previous_response_id lands on the backend that stored the response");
const events = await client.responses.create({ model, input: "Stream a story", stream: true });
let deltas = "";
let finished = null;
for await (const ev of events) {
  if (ev.type === "response.output_text.delta") deltas += ev.delta;
  if (ev.type === "response.completed") finished = ev.response;
}
check(finished !== null && deltas.length > 0 && finished.output[0].content[0].text === deltas,
      "a streamed response's deltas add up to its completed text");
const fetched = await client.responses.retrieve(finished.id);
check(fetched.id === finished.id && fetched.status === "completed", "responses.retrieve reaches the owner");
await client.responses.del(finished.id);
try {
  await client.responses.retrieve(finished.id);
  check(false, "a deleted response raises");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError, "a deleted response is NotFoundError");
}
console.log("all SDK checks passed");
