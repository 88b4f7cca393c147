// What both SDK checks share: the official client on a gateway's base URL
// (unmodified but for baseURL), and one line per check, exiting non-zero
// on the first failure.
import OpenAI from "openai";

export function gatewayClient(base, { apiKey = "unused", maxRetries = 0 } = {}) {
  return new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries, timeout: 20000 });
}

export function check(cond, what) {
  if (!cond) {
    console.error(`FAIL ${what}`);
    process.exit(1);
  }
  console.log(`ok ${what}`);
}
