// The official OpenAI Node SDK against a gateway's HTTPS listener
// (server.tls). Usage: NODE_EXTRA_CA_CERTS=root.pem node tls_check.mjs
// https://127.0.0.1:PORT MODEL. Node verifies the certificate chain and
// the address against the certificate's names, as for any API.
import { check, gatewayClient } from "./sdk_client.mjs";

const [base, model] = process.argv.slice(2);
check(base.startsWith("https://"), `an https:// base URL (${base})`);
const client = gatewayClient(base);

const models = await client.models.list();
check(models.data.some((m) => m.id === model), "models.list over HTTPS");

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Say hello" }],
  max_tokens: 5,
});
check(chat.object === "chat.completion" && chat.usage.completion_tokens === 5, "chat completion over HTTPS");

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Stream please" }],
  max_tokens: 5,
  stream: true,
});
let chunks = 0;
for await (const chunk of stream) if (chunk.choices.length > 0) chunks++;
check(chunks >= 1, "streamed chat completion over HTTPS");

console.log("all TLS SDK checks passed");
