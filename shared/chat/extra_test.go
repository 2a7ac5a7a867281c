package chat

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// A request as clients send it, with members sluice does not model at every
// level: they must come back out unchanged for OpenAI-compatible upstreams.
const passThrough = `{
  "model": "m",
  "messages": [
    {"role": "system", "content": "be brief", "cache_control": {"type": "ephemeral"}},
    {"role": "user", "content": [
      {"type": "text", "text": "what is in these?", "cache_control": {"type": "ephemeral"}},
      {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
      {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
      {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}
    ]},
    {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}, "reasoning_content": "hmm"},
    {"role": "function", "name": "f", "content": "42"}
  ],
  "tools": [
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}, "cache_control": {"type": "ephemeral"}},
    {"type": "custom", "custom": {"name": "code", "description": "run code"}}
  ],
  "logprobs": true, "top_logprobs": 3, "logit_bias": {"50256": -100},
  "metadata": {"team": "x"}, "store": false, "service_tier": "flex",
  "prediction": {"type": "content", "content": "draft"},
  "functions": [{"name": "f"}],
  "top_k": 20, "repetition_penalty": 1.1, "chat_template_kwargs": {"enable_thinking": false},
  "guided_json": {"type": "object"},
  "parallel_tool_calls": false, "seed": 7
}`

func TestPassThroughRoundTrip(t *testing.T) {
	var r Request
	if err := json.Unmarshal([]byte(passThrough), &r); err != nil {
		t.Fatal(err)
	}
	wantExtra := []string{"chat_template_kwargs", "functions", "guided_json", "logit_bias", "logprobs", "metadata",
		"prediction", "repetition_penalty", "service_tier", "store", "top_k", "top_logprobs"}
	if got := r.Extra.Keys(); !reflect.DeepEqual(got, wantExtra) {
		t.Errorf("request extras = %v\nwant %v", got, wantExtra)
	}
	if r.Messages[0].Extra.IsNull("cache_control") || r.Messages[2].Extra.IsNull("function_call") {
		t.Errorf("message extras = %v, %v", r.Messages[0].Extra, r.Messages[2].Extra)
	}
	parts := r.Messages[1].Content.Parts
	if parts[0].Extra.IsNull("cache_control") || parts[1].File == nil || parts[1].File.Filename != "a.pdf" ||
		parts[2].InputAudio == nil || parts[2].InputAudio.Format != "wav" || parts[3].Extra.IsNull("video_url") {
		t.Errorf("parts = %+v", parts)
	}
	if r.Tools[0].Extra.IsNull("cache_control") || len(r.Tools[1].Custom) == 0 {
		t.Errorf("tools = %+v", r.Tools)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, out, []byte(passThrough)) {
		t.Errorf("round trip changed the request:\n got %s\nwant %s", out, compact(t, passThrough))
	}
}

// Members whose names match a modelled field without regard to case are
// decoded into that field by encoding/json, so they are not extras too.
func TestExtraIgnoresCaseVariantsOfKnownFields(t *testing.T) {
	var r Request
	if err := json.Unmarshal([]byte(`{"Model":"m","MESSAGES":[],"x":1}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Model != "m" || !reflect.DeepEqual(r.Extra.Keys(), []string{"x"}) {
		t.Errorf("model %q extras %v", r.Model, r.Extra)
	}
}

// Invalid UTF-8 is declined by the scanner and handled by encoding/json.
func TestExtraFallsBackOnInputTheScannerDeclines(t *testing.T) {
	var r Request
	if err := json.Unmarshal([]byte("{\"model\":\"m\",\"x\":\"\xff\"}"), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Extra) != 1 || r.Extra.IsNull("x") {
		t.Errorf("extras %v", r.Extra)
	}
}

func TestRequestWithoutExtrasHasNone(t *testing.T) {
	var r Request
	if err := json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Extra != nil || r.Messages[0].Extra != nil {
		t.Errorf("extras where there are none: %v %v", r.Extra, r.Messages[0].Extra)
	}
}

// FuzzExtraPreserved: whatever object a client sends, every member sluice
// does not model comes back out with the same value.
func FuzzExtraPreserved(f *testing.F) {
	f.Add([]byte(passThrough))
	f.Add([]byte(`{"model":"m","a":{"b":[1,2,{"c":null}]},"d":"\u00e9\ud83d\ude00","e":-1.5e3}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"x","y":true}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if json.Unmarshal(data, &r) != nil {
			return
		}
		var in map[string]json.RawMessage
		if json.Unmarshal(data, &in) != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back map[string]json.RawMessage
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("output is not a JSON object: %v\n%s", err, out)
		}
		for k := range r.Extra {
			if !sameJSON(t, back[k], in[k]) {
				t.Fatalf("extra %q: in %s, out %s", k, in[k], back[k])
			}
		}
	})
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func compact(t *testing.T, s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
