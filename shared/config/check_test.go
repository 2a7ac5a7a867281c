package config

import (
	"strings"
	"testing"
)

// TestCheckNamesDottedFields covers what yaml.v3 reports by line number
// only: unknown fields and values of the wrong type, anywhere in the
// document, in YAML and in one-line JSON.
func TestCheckNamesDottedFields(t *testing.T) {
	const models = "\nmodels: {m: {targets: [s/x]}}"
	cases := []struct{ name, doc, want string }{
		{"unknown nested field", "providers:\n  s:\n    type: simulated\n    simulated:\n      tokenz: 4" + models,
			"providers.s.simulated.tokenz: unknown field (did you mean tokens?); simulated takes ttft, token_gap, tokens, reasoning_tokens, fault"},
		{"unknown top-level field", "provider: {}\nproviders: {s: {type: simulated}}" + models,
			"provider: unknown field (did you mean providers?)"},
		{"unknown field in a target", "providers: {s: {type: simulated}}\nmodels: {m: {targets: [{provider: s, model: x, contextwindow: 8}]}}",
			"models.m.targets[0].contextwindow: unknown field (did you mean context_window?)"},
		{"unknown field in a route policy", "providers: {s: {type: simulated}}\nmodels: {m: {targets: [s/x], policy: {timeouts: {frist_token: 1s}}}}",
			"models.m.policy.timeouts.frist_token: unknown field (did you mean first_token?)"},
		{"unknown field in defaults", "defaults: {retry: {attempts: 2}}\nproviders: {s: {type: simulated}}" + models,
			"defaults.retry.attempts: unknown field"},
		{"wrong type in JSON", `{"providers":{"s":{"type":"simulated","simulated":{"tokens":"many"}}},"models":{"m":{"targets":["s/x"]}}}`,
			`providers.s.simulated.tokens: want a whole number, not "many"`},
		{"bool", "server: {direct_routes: maybe}\nproviders: {s: {type: simulated}}" + models,
			`server.direct_routes: want true or false, not "maybe"`},
		{"number", "prices: {s/x: {input: cheap}}\nproviders: {s: {type: simulated}}" + models,
			`prices.s/x.input: want a number, not "cheap"`},
		{"list where a mapping goes", "providers: [s]" + models, "providers: want a mapping, not a list"},
		{"mapping where a list goes", "providers: {s: {type: simulated}}\nmodels: {m: {targets: {a: b}}}", "models.m.targets: want a list, not a mapping"},
		{"scalar where a struct goes", "server: fast\nproviders: {s: {type: simulated}}" + models, `server: want a mapping of addr,`},
		{"target without a slash", "providers: {s: {type: simulated}}\nmodels: {m: {targets: [sx]}}", `models.m.targets[0]: write a target as provider/model`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

// A key written into the file is refused with a hint, and never repeated.
func TestSecretHint(t *testing.T) {
	for _, doc := range []string{
		"providers: {openai: {type: openai, api_key: sk-proj-abcdef1234567890}}\nmodels: {m: {targets: [openai/x]}}",
		`{"providers":{"openai":{"type":"openai","api_key":"sk-proj-abcdef1234567890"}},"models":{"m":{"targets":["openai/x"]}}}`,
		"providers: {openai: {type: openai, api_key: [sk-proj-abcdef1234567890]}}\nmodels: {m: {targets: [openai/x]}}",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), "providers.openai.api_key") || !strings.Contains(err.Error(), "{env: VARIABLE}") {
			t.Errorf("err = %v, want a hint naming providers.openai.api_key", err)
		}
		if err != nil && strings.Contains(err.Error(), "abcdef") {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
	// A key put where the variable's name goes is caught too, unrepeated.
	_, err := Parse([]byte("providers: {openai: {type: openai, api_key: {env: sk-proj-abcdef1234567890}}}\nmodels: {m: {targets: [openai/x]}}"))
	if err == nil || !strings.Contains(err.Error(), "providers.openai.api_key.env") || strings.Contains(err.Error(), "abcdef") {
		t.Errorf("key as a variable name: %v", err)
	}
}

// Anchors, aliases and merge keys are YAML, and fields reached through
// them are checked like any other.
func TestCheckFollowsAnchors(t *testing.T) {
	doc := `
x-sim: &sim {type: simulated, simulated: {tokens: 3}}
providers:
  a: *sim
  b:
    <<: *sim
    simulated: {ttft: 5ms}
models: {m: {targets: [a/x, b/x]}}
`
	_, err := Parse([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "x-sim: unknown field") {
		t.Fatalf("err = %v, want only the unknown top-level x-sim", err)
	}
	doc = strings.Replace(doc, "x-sim: &sim {type: simulated, simulated: {tokens: 3}}\nproviders:\n  a: *sim",
		"providers:\n  a: &sim {type: simulated, simulated: {tokens: 3}}", 1)
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Providers["b"]; b.Type != "simulated" || b.Simulated == nil || b.Simulated.TTFT.Milliseconds() != 5 {
		t.Errorf("merged provider %+v", b)
	}
	bad := strings.Replace(doc, "ttft: 5ms", "ttft: 5ms, tokenz: 1", 1)
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "providers.b.simulated.tokenz") {
		t.Errorf("err = %v", err)
	}
}
