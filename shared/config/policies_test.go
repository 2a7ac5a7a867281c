package config

import (
	"strings"
	"testing"
	"time"
)

const withFeatures = `
providers:
  openai: {type: simulated}
  anthropic: {type: simulated}
models:
  chat:
    targets: [openai/gpt-4o-mini, anthropic/claude]
    cache: {ttl: 1h, shared: true}
    guard:
      block:
        - {name: secrets, pattern: '(?i)api[_-]?key\s*[:=]'}
        - {name: competitors, words: [acme, globex corp]}
      redact: [email, card]
    canary: {target: openai/gpt-4.1-mini, percent: 12.5, sticky: key}
    shadow: {target: {provider: anthropic, model: claude-next}, percent: 50, timeout: 45s, store_text: true, ttl: 72h}
  plain:
    targets: [openai/gpt-4o-mini]
`

func TestParseFeatures(t *testing.T) {
	c, err := Parse([]byte(withFeatures))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Models["chat"]
	if m.Cache == nil || m.Cache.TTL != time.Hour || !m.Cache.Shared {
		t.Errorf("cache %+v", m.Cache)
	}
	if g := m.Guard; g == nil || len(g.Block) != 2 || g.Block[1].Words[1] != "globex corp" || len(g.Redact) != 2 {
		t.Errorf("guard %+v", m.Guard)
	}
	if cn := m.Canary; cn == nil || *cn.Target != (Target{Provider: "openai", Model: "gpt-4.1-mini"}) || cn.Percent != 12.5 || cn.Sticky != "key" {
		t.Errorf("canary %+v", m.Canary)
	}
	if s := m.Shadow; s == nil || s.Target.Model != "claude-next" || s.Percent != 50 || s.Timeout != 45*time.Second || !s.StoreText || s.TTL != 72*time.Hour {
		t.Errorf("shadow %+v", m.Shadow)
	}
	if p := c.Models["plain"]; p.Cache != nil || p.Guard != nil || p.Canary != nil || p.Shadow != nil {
		t.Errorf("plain route has features: %+v", p.Features)
	}
}

func TestFeatureErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`cache: {ttl: 0s}`:                                               "models.chat.cache.ttl",
		`cache: {ttl: 1h, lookup_timeout: -1s}`:                          "models.chat.cache.lookup_timeout",
		`cache: {ttl: 1h, size: 3}`:                                      "size",
		`guard: {block: [{pattern: x}]}`:                                 "models.chat.guard.block[0].name",
		`guard: {block: [{name: a, pattern: x}, {name: a, words: [y]}]}`: "models.chat.guard.block[1].name",
		`guard: {block: [{name: a}]}`:                                    "models.chat.guard.block[0]: needs exactly one",
		`guard: {block: [{name: a, pattern: x, words: [y]}]}`:            "models.chat.guard.block[0]: needs exactly one",
		`guard: {block: [{name: a, pattern: "a("}]}`:                     "models.chat.guard.block[0].pattern",
		`guard: {block: [{name: a, words: [""]}]}`:                       "models.chat.guard.block[0].words[0]",
		`guard: {redact: [email, ssn]}`:                                  "models.chat.guard.redact[1]",
		`guard: {redact: [email, email]}`:                                "models.chat.guard.redact[1]",
		`guard: {}`:                                                      "models.chat.guard: declares no filter",
		`canary: {percent: 10}`:                                          "models.chat.canary.target",
		`canary: {target: nope/x, percent: 10}`:                          "models.chat.canary.target.provider",
		`canary: {target: openai/y, percent: 0}`:                         "models.chat.canary.percent",
		`canary: {target: openai/y, percent: 101}`:                       "models.chat.canary.percent",
		`canary: {target: openai/gpt-4o-mini, percent: 5}`:               "models.chat.canary.target: is already the route's first target",
		`canary: {target: openai/y, percent: 5, sticky: user}`:           "models.chat.canary.sticky",
		`shadow: {target: anthropic/claude, percent: 5}`:                 "models.chat.shadow.target: anthropic/claude already serves",
		`shadow: {target: openai/gpt-4o-mini, percent: 5}`:               "models.chat.shadow.target",
		`shadow: {target: {provider: openai}, percent: 5}`:               "models.chat.shadow.target.model",
		`shadow: {target: openai/z, percent: 5, timeout: -1s}`:           "models.chat.shadow.timeout",
		`shadow: {target: openai/z, percent: 5, ttl: -1s}`:               "models.chat.shadow.ttl",
		`shadow: {target: openai/z}`:                                     "models.chat.shadow.percent",
		`canary: {target: openai/y, percent: 5}
    shadow: {target: openai/y, percent: 5}`: "models.chat.shadow.target: openai/y already serves",
	}
	for feature, want := range cases {
		doc := `
providers:
  openai: {type: simulated}
  anthropic: {type: simulated}
models:
  chat:
    targets: [openai/gpt-4o-mini, anthropic/claude]
    ` + feature + "\n"
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to name %q", feature, err, want)
		}
	}
}
