package chat

import (
	"encoding/json"
	"testing"
)

// A typical agent request: a system prompt, a few turns, tool calls and
// results, two tools.
const typicalRequest = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,
"messages":[{"role":"system","content":"You are a helpful assistant that answers briefly and calls tools when needed."},
{"role":"user","content":"What's the weather in Oslo and the time there?"},
{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"Europe/Oslo\"}"}}]},
{"role":"tool","tool_call_id":"call_1","content":"18C and sunny"},{"role":"tool","tool_call_id":"call_2","content":"14:05"},
{"role":"user","content":[{"type":"text","text":"Thanks. And tomorrow?"}]}],
"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}}]}`

func BenchmarkDecodeRequest(b *testing.B) {
	data := []byte(typicalRequest)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var r Request
		if err := DecodeRequest(data, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	var r Request
	if err := json.Unmarshal([]byte(typicalRequest), &r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
