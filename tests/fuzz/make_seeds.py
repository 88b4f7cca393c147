#!/usr/bin/env python3
"""Writes the seed corpora (corpus/<target>/seed-*) from the tests' own
fixtures: requests and answers the other tests send, the shipped configs,
the nvidia-smi listings of the GPU tests. Run it again after changing the
fixtures; crash inputs found by fuzzing live beside the seeds as crash-* and
are kept."""
import json
import pathlib

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent

CHAT = json.dumps({"model": "small", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
STREAM = json.dumps({"model": "small", "stream": True, "stream_options": {"include_usage": True},
                     "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]})
TOOLS = json.dumps({"model": "m", "messages": [{"role": "user", "content": "weather?"}],
                    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                    "temperature": 0, "seed": 7})
PARTS = json.dumps({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}], "max_completion_tokens": 9})
COMPLETION = json.dumps({"model": "m", "prompt": ["one", "two"], "max_tokens": 3, "temperature": 1.0, "top_p": 1e0})
EMBEDDING = json.dumps({"model": "embed", "input": ["alpha", "beta"], "encoding_format": "float", "dimensions": 8})
EMBED_TOKENS = json.dumps({"model": "embed", "input": [1, 2, 3]})
RESPONSES = json.dumps({"model": "m", "input": "hi", "instructions": "Be brief.", "store": True,
                        "previous_response_id": "resp_abc", "max_output_tokens": 16})
MULTIPART = ("--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n"
             "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
             "Content-Type: audio/wav\r\n\r\nRIFF....\r\n--XyZ--\r\n")
ODD = ['{"model":"m","messages":[]}', '{"model":"m","messages":[{"role":"user","content":"\\ud83d\\ude00 \\u00e9"}]}',
       '{"model":"m","n":2,"messages":[{"role":"user","content":"x"}],"stream":false,"user":"u1"}',
       '{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":null,"seed":null}',
       '{"model":"m","max_tokens":18446744073709551615,"messages":[{"role":"user","content":"x"}]}',
       '[1,2]', '"just a string"', '{"model":', '{"model":"m","messages":[{"role":"tool","tool_call_id":"c1","content":"22C"}]}']

JSON_ANSWER = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})


def chunk(delta, finish=None, usage=None):
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        c["usage"] = usage
    return "data: " + json.dumps(c) + "\n\n"


SSE = (chunk({"role": "assistant", "content": "Hel"}) + chunk({"content": "lo"}) + chunk({}, "stop") +
       chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}) + "data: [DONE]\n\n")
SSE_TOOLS = (chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                                          "function": {"name": "f", "arguments": "{\"a\""}}]}) +
             chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}) + chunk({}, "tool_calls") +
             "data: [DONE]\n\n")


def request(method, target, body="", headers=(), chunked=False):
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"] + list(headers)
    if chunked:
        head.append("Transfer-Encoding: chunked")
        parts = [body[i:i + 7] for i in range(0, len(body), 7)]
        payload = "".join(f"{len(p):x}\r\n{p}\r\n" for p in parts) + "0\r\n\r\n"
    else:
        if body or method == "POST":
            head.append(f"Content-Length: {len(body.encode())}")
        payload = body
    return "\r\n".join(head) + "\r\n\r\n" + payload


def response(status, body, content_type="application/json", chunked=False, extra=()):
    head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"] + list(extra)
    if chunked:
        head.append("Transfer-Encoding: chunked")
        parts = [body[i:i + 40] for i in range(0, len(body), 40)]
        payload = "".join(f"{len(p.encode()):x}\r\n{p}\r\n" for p in parts) + "0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body.encode())}")
        payload = body
    return "\r\n".join(head) + "\r\n\r\n" + payload


def write(target, name, data):
    d = here / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


json_ct = "Content-Type: application/json"
front = {
    "chat": request("POST", "/v1/chat/completions", CHAT, [json_ct]),
    "chat-chunked": request("POST", "/v1/chat/completions", STREAM, [json_ct], chunked=True),
    "pipelined": request("GET", "/healthz") + request("POST", "/v1/embeddings", EMBEDDING, [json_ct]) +
                 request("GET", "/v1/models?with_endpoints=1"),
    "expect": request("POST", "/v1/completions", COMPLETION, [json_ct, "Expect: 100-continue", "Authorization: Bearer sk-1"]),
    "responses-by-id": request("GET", "/v1/responses/resp_abc123") + request("DELETE", "/v1/responses/resp_abc123"),
    "responses": request("POST", "/v1/responses", RESPONSES, [json_ct, "Connection: close"]),
    "smuggle": request("POST", "/v1/chat/completions", CHAT, [json_ct, "Transfer-Encoding: chunked"]),
    "multipart": request("POST", "/v1/audio/transcriptions", MULTIPART, ["Content-Type: multipart/form-data; boundary=XyZ"]),
    "metrics": request("GET", "/metrics") + request("GET", "/readyz"),
}
for name, data in front.items():
    write("front_door", name, b"\x00" + data.encode())  # first byte: how the bytes arrive (0: at once)
write("front_door", "chat-bytewise", b"\x01" + front["chat"].encode())
write("front_door", "pipelined-pieces", b"\x07" + front["pipelined"].encode())

bodies = {"chat": CHAT, "stream": STREAM, "tools": TOOLS, "parts": PARTS, "completion": COMPLETION,
          "embedding": EMBEDDING, "embed-tokens": EMBED_TOKENS, "responses": RESPONSES}
for i, b in enumerate(ODD):
    bodies[f"odd{i}"] = b
endpoint_of = {"completion": 1, "embedding": 2, "embed-tokens": 2, "responses": 3}
for name, b in bodies.items():
    write("openai_request", name, bytes([endpoint_of.get(name, 0), 0]) + b.encode())
write("openai_request", "multipart", bytes([5, 1]) + MULTIPART.encode())
write("openai_request", "passthrough-json", bytes([5, 0]) + CHAT.encode())
for name, b in bodies.items():
    write("cache_key", name, b)

write("upstream_response", "json", response("200 OK", JSON_ANSWER))
write("upstream_response", "sse-chunked", response("200 OK", SSE, "text/event-stream", chunked=True))
write("upstream_response", "sse-tools", response("200 OK", SSE_TOOLS, "text/event-stream"))
write("upstream_response", "busy", response("429 Too Many Requests",
      json.dumps({"error": {"message": "busy", "type": "server_error"}}), extra=["Retry-After: 2"]))
write("upstream_response", "no-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + JSON_ANSWER)

for i, content in enumerate(["Hello there", "", "multi\nline \"quoted\" \\ text", "héllo 😀 ünïcode", "x" * 300]):
    write("sse_replay", f"content{i}", bytes([i * 7]) + content.encode())

configs = list((root / "resources" / "config").glob("*.yaml")) + list((root / "deploy").rglob("spillway.yaml"))
for path in configs:
    write("config_yaml", path.parent.name + "-" + path.stem, path.read_bytes())
write("config_yaml", "tls", "server:\n  listen: 127.0.0.1:0\n  tls: {cert_file: c.pem, key_file: k.pem, "
      "client_ca_file: ca.pem}\nlimits:\n  keys:\n    - {name: a, client_cert_cn: a}\nbackends:\n"
      "  - {name: a, url: 'sim://a', models: [m]}\n")

write("smi_parser", "new-form",
      "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-5fd4a1b2-0000-1111-2222-333344445555)\n"
      "  MIG 3g.40gb     Device  0: (UUID: MIG-c6d4f1e2-aaaa-bbbb-cccc-ddddeeeeffff)\r\n"
      "  MIG 1g.10gb     Device  1: (UUID: MIG-0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff)\n\n"
      "GPU 1: NVIDIA H200 (UUID: GPU-99999999-0000-1111-2222-333344445555)\n")
write("smi_parser", "old-form",
      "GPU 0: A100-SXM4-40GB (UUID: GPU-5fd4a1b2)\n"
      "  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5fd4a1b2/7/0)\n"
      "  MIG 2g.10gb Device 1: (UUID: MIG-GPU-5fd4a1b2/3/1)\n")
write("smi_parser", "malformed", "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nNo devices were found\n")
