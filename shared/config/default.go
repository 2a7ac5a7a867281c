package config

import "time"

// Default is the configuration used when none is given: simulated models
// that need no key, plus OpenAI and Anthropic when their keys are in the
// environment. getenv is os.Getenv outside tests.
func Default(getenv func(string) string) *Config {
	c := &Config{
		Providers: map[string]Provider{
			"simulated": {Type: TypeSimulated, Simulated: &Simulated{
				TTFT: 150 * time.Millisecond, TokenGap: 30 * time.Millisecond, Tokens: 48}},
			// Always down: shows fallback working out of the box.
			"simulated-down": {Type: TypeSimulated, Simulated: &Simulated{
				TTFT: 40 * time.Millisecond, Fault: &Fault{Mode: "status", Status: 503}}},
			// Structured output that is invalid on the first try: shows a
			// task's repair turn (see the README's task API section).
			"simulated-sloppy": {Type: TypeSimulated, Simulated: &Simulated{
				TTFT: 100 * time.Millisecond, TokenGap: 5 * time.Millisecond, InvalidFirst: 1}},
		},
		Models: map[string]Model{
			"sluice-sim": {Description: "deterministic simulated model",
				Targets: []Target{{Provider: "simulated", Model: "sim-1"}}},
			"sluice-fallback-demo": {Description: "first target always fails with 503; the second serves",
				Targets: []Target{{Provider: "simulated-down", Model: "sim-1"}, {Provider: "simulated", Model: "sim-1"}}},
			"sluice-repair-demo": {Description: "JSON Schema answers invalid on the first attempt, valid after one repair turn",
				Targets: []Target{{Provider: "simulated-sloppy", Model: "sim-1"}}},
		},
	}
	var chatTargets []Target
	if getenv("OPENAI_API_KEY") != "" {
		c.Providers["openai"] = Provider{Type: TypeOpenAI, APIKey: &Secret{Env: "OPENAI_API_KEY"}}
		gpt := Target{Provider: "openai", Model: "gpt-4o-mini", MaxOutputTokens: 16384}
		c.Models["gpt-4o-mini"] = Model{Targets: []Target{gpt}}
		chatTargets = append(chatTargets, gpt)
	}
	if getenv("ANTHROPIC_API_KEY") != "" {
		c.Providers["anthropic"] = Provider{Type: TypeAnthropic, APIKey: &Secret{Env: "ANTHROPIC_API_KEY"}}
		haiku := Target{Provider: "anthropic", Model: "claude-3-5-haiku-latest", MaxOutputTokens: 8192}
		c.Models["claude-haiku"] = Model{Targets: []Target{haiku}}
		chatTargets = append(chatTargets, haiku)
	}
	if len(chatTargets) == 0 {
		chatTargets = []Target{{Provider: "simulated", Model: "sim-1"}}
	}
	c.Models["chat"] = Model{Description: "general chat: real providers in order when keys are set", Targets: chatTargets}
	defaultEmbeddings(c)
	return c
}
