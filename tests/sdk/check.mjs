// Drives a Spillway gateway with the official OpenAI Node SDK, unmodified
// except for baseURL. Usage: node check.mjs http://127.0.0.1:PORT MODEL
// Prints one line per check and exits non-zero on the first failure.
import OpenAI from "openai";

const [base, model, strictBase] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 20000 });

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL ${what}`);
    process.exit(1);
  }
  console.log(`ok ${what}`);
}

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
const limited = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-sdk-limited", maxRetries: 0, timeout: 20000 });
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
const patient = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-sdk-patient", maxRetries: 3, timeout: 20000 });
await patient.chat.completions.create({ model, messages: [{ role: "user", content: "one" }], max_tokens: 2 });
const retried = await patient.chat.completions.create({ model, messages: [{ role: "user", content: "two" }], max_tokens: 2 });
check(retried.object === "chat.completion", "the SDK retried its 429 after Retry-After and got the answer");
// 401 and 503 as the SDK sees them, from an engine that requires keys and
// has no backend to serve (the optional third argument).
if (strictBase) {
  const ask = (apiKey) =>
    new OpenAI({ baseURL: `${strictBase}/v1`, apiKey, maxRetries: 0, timeout: 20000 }).chat.completions.create({
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
console.log("all SDK checks passed");
