package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
server:
  max_body_bytes: 1048576
  log_level: debug
providers:
  openai:
    type: openai
    api_key: {env: OPENAI_API_KEY}
  local:
    type: openai
    base_url: http://localhost:11434/v1
  sim:
    type: simulated
    simulated:
      ttft: 20ms
      token_gap: 2ms
      fault: {mode: cut, after: 3, rate: 0.5}
models:
  chat:
    targets:
      - openai/gpt-4o-mini
      - {provider: local, model: llama3.1:8b}
      - sim/sim-1
  router-model:
    targets: [local/meta-llama/Llama-3.1-8B]
`

func TestParseYAML(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	ts := c.Models["chat"].Targets
	if len(ts) != 3 || ts[0] != (Target{Provider: "openai", Model: "gpt-4o-mini"}) || ts[1] != (Target{Provider: "local", Model: "llama3.1:8b"}) {
		t.Errorf("targets %+v", ts)
	}
	if got := c.Models["router-model"].Targets[0]; got != (Target{Provider: "local", Model: "meta-llama/Llama-3.1-8B"}) {
		t.Errorf("model names may contain '/': %+v", got)
	}
	s := c.Providers["sim"].Simulated
	if s.TTFT != 20*time.Millisecond || s.Fault.Mode != "cut" || s.Fault.Rate != 0.5 {
		t.Errorf("simulated %+v", s)
	}
}

func TestParseJSON(t *testing.T) {
	doc := `{"providers":{"sim":{"type":"simulated"}},"models":{"m":{"targets":[{"provider":"sim","model":"x"}]}}}`
	if _, err := Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	cases := []struct{ name, doc, field string }{
		{"unknown field", "providers:\n  sim:\n    type: simulated\n    tipe: x\nmodels: {m: {targets: [sim/x]}}", "providers.sim.tipe: unknown field (did you mean type?)"},
		{"bad type", "providers: {p: {type: gpt}}\nmodels: {m: {targets: [p/x]}}", "providers.p.type"},
		{"bad url", "providers: {p: {type: openai, base_url: 'localhost:1234'}}\nmodels: {m: {targets: [p/x]}}", "providers.p.base_url"},
		{"unknown provider", "providers: {p: {type: simulated}}\nmodels: {m: {targets: [q/x]}}", "models.m.targets[0].provider"},
		{"no targets", "providers: {p: {type: simulated}}\nmodels: {m: {targets: []}}", "models.m.targets"},
		{"target without slash", "providers: {p: {type: simulated}}\nmodels: {m: {targets: [px]}}", "provider/model"},
		{"no providers", "models: {m: {targets: [p/x]}}", "providers"},
		{"no models", "providers: {p: {type: simulated}}", "models"},
		{"anthropic needs key", "providers: {a: {type: anthropic}}\nmodels: {m: {targets: [a/x]}}", "providers.a.api_key"},
		{"azure needs url", "providers: {a: {type: azure, api_key: {env: K}}}\nmodels: {m: {targets: [a/x]}}", "providers.a.base_url"},
		{"empty env name", "providers: {a: {type: openai, api_key: {}}}\nmodels: {m: {targets: [a/x]}}", "providers.a.api_key.env"},
		{"fault mode", "providers: {s: {type: simulated, simulated: {fault: {mode: explode}}}}\nmodels: {m: {targets: [s/x]}}", "providers.s.simulated.fault.mode"},
		{"fault rate", "providers: {s: {type: simulated, simulated: {fault: {mode: cut, rate: 2}}}}\nmodels: {m: {targets: [s/x]}}", "providers.s.simulated.fault.rate"},
		{"bad duration", "providers: {s: {type: simulated, simulated: {ttft: soon}}}\nmodels: {m: {targets: [s/x]}}", "providers.s.simulated.ttft: want a duration"},
		{"log level", "server: {log_level: loud}\nproviders: {s: {type: simulated}}\nmodels: {m: {targets: [s/x]}}", "server.log_level"},
		{"simulated on openai", "providers: {s: {type: openai, simulated: {}}}\nmodels: {m: {targets: [s/x]}}", "providers.s.simulated"},
		{"not yaml", "{{{", "config"},
		{"negative output limit", "providers: {s: {type: simulated}}\nmodels: {m: {targets: [{provider: s, model: x, max_output_tokens: -1}]}}", "models.m.targets[0].max_output_tokens"},
		{"infinite price", "providers: {s: {type: simulated}}\nmodels: {m: {targets: [s/x]}}\nprices: {s/x: {input: .inf, output: 1}}", "prices.s/x"},
		{"NaN price", "providers: {s: {type: simulated}}\nmodels: {m: {targets: [s/x]}}\nprices: {s/x: {input: 1, output: .nan}}", "prices.s/x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("err = %v, want mention of %q", err, tc.field)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse([]byte("providers: {p: {type: gpt}, q: {type: openai, base_url: x}}\nmodels: {m: {targets: [z/x]}}"))
	for _, f := range []string{"providers.p.type", "providers.q.base_url", "models.m.targets[0].provider"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("missing %s in %v", f, err)
		}
	}
}

func TestDefault(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	c := Default(getenv)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Providers["openai"]; ok {
		t.Error("openai configured without a key")
	}
	if ts := c.Models["chat"].Targets; len(ts) != 1 || ts[0].Provider != "simulated" {
		t.Errorf("keyless chat route %+v", ts)
	}
	env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"] = "sk-x", "sk-ant-x"
	c = Default(getenv)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ts := c.Models["chat"].Targets
	if len(ts) != 2 || ts[0].Provider != "openai" || ts[1].Provider != "anthropic" {
		t.Errorf("chat route with keys %+v", ts)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	os.WriteFile(path, []byte(good), 0o600)
	c, src, err := Load(path)
	if err != nil || src != path || len(c.Models) != 2 {
		t.Fatalf("Load file: %v %s", err, src)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("providers: {p: {type: gpt}}\nmodels: {m: {targets: [p/x]}}"), 0o600)
	if _, _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "providers.p.type") {
		t.Errorf("Load bad file: %v", err)
	}
	t.Setenv("SLUICE_CONFIG", "")
	t.Setenv("SLUICE_CONFIG_JSON", `{"providers":{"s":{"type":"simulated"}},"models":{"only":{"targets":["s/x"]}}}`)
	c, src, err = Load("")
	if err != nil || src != "SLUICE_CONFIG_JSON" || len(c.Models) != 1 {
		t.Fatalf("Load env: %v %s", err, src)
	}
	t.Setenv("SLUICE_CONFIG_JSON", "")
	if _, src, err = Load(""); err != nil || src != "built-in defaults" {
		t.Fatalf("Load defaults: %v %s", err, src)
	}
}

func TestRoutePolicyOverridesDefaults(t *testing.T) {
	doc := `
defaults:
  timeouts: {first_token: 10s, stall: 20s}
  retry: {max_attempts: 3}
  last_resort: {retry_after: 30s}
resilience:
  retry_budget: {ratio: 0.2, floor: 2}
  breaker: {consecutive_failures: 3, cooldown: 10s}
providers: {s: {type: simulated}}
prices:
  s/x: {input: 0.15, output: 0.6}
models:
  plain: {targets: [s/x]}
  tuned:
    targets: [{provider: s, model: x, context_window: 128000}]
    policy:
      timeouts: {first_token: 2s}
      continue_on_break: true
      hedge_after: 800ms
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	plain, tuned := c.Models["plain"].Resolved, c.Models["tuned"].Resolved
	if plain.Timeouts.FirstToken != 10*time.Second || plain.Retry.MaxAttempts != 3 || plain.ContinueOnBreak {
		t.Errorf("plain %+v", plain)
	}
	if tuned.Timeouts.FirstToken != 2*time.Second || tuned.Timeouts.Stall != 20*time.Second || tuned.Retry.MaxAttempts != 3 ||
		!tuned.ContinueOnBreak || tuned.HedgeAfter != 800*time.Millisecond || tuned.LastResort.RetryAfter != 30*time.Second {
		t.Errorf("tuned %+v", tuned)
	}
	if c.Models["tuned"].Targets[0].ContextWindow != 128000 || c.Prices["s/x"].Output != 0.6 {
		t.Error("context window or prices not parsed")
	}
	if c.Resilience.RetryBudget.Ratio != 0.2 || c.Resilience.Breaker.ConsecutiveFailures != 3 {
		t.Errorf("resilience %+v", c.Resilience)
	}
	// Unknown policy fields are errors too, named by route.
	_, err = Parse([]byte("providers: {s: {type: simulated}}\nmodels: {m: {targets: [s/x], policy: {hedge: 1s}}}"))
	if err == nil || !strings.Contains(err.Error(), "models.m.policy") {
		t.Errorf("err = %v", err)
	}
	_, err = Parse([]byte("providers: {s: {type: simulated}}\nmodels: {m: {targets: [s/x], policy: {retry: {max_attempts: 50}}}}"))
	if err == nil || !strings.Contains(err.Error(), "models.m.policy.retry.max_attempts") {
		t.Errorf("err = %v", err)
	}
}
