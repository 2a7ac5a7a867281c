package gateway

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/config"
)

const all = `
providers:
  openai: {type: openai, api_key: {env: TEST_OPENAI_KEY}}
  azure: {type: azure, base_url: "https://r.openai.azure.com/openai/deployments/d", api_key: {env: TEST_AZURE_KEY}}
  claude: {type: anthropic, api_key: {env: TEST_ANTHROPIC_KEY}}
  bedrock: {type: bedrock, region: us-east-1}
  sim: {type: simulated}
models:
  chat: {targets: [openai/gpt-4o-mini, azure/gpt-4o, claude/claude-sonnet-4-5, bedrock/anthropic.claude-3-haiku, sim/x]}
`

func TestBuildEveryProviderType(t *testing.T) {
	c, err := config.Parse([]byte(all))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_OPENAI_KEY": "a", "TEST_AZURE_KEY": "b", "TEST_ANTHROPIC_KEY": "c"}
	e, err := Build(context.Background(), c, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	rt, ok := e.Route("chat")
	if !ok || len(rt.Targets) != 5 {
		t.Fatalf("route %+v", rt)
	}
	want := []string{"openai/gpt-4o-mini", "azure/gpt-4o", "claude/claude-sonnet-4-5", "bedrock/anthropic.claude-3-haiku", "sim/x"}
	for i, tg := range rt.Targets {
		if tg.String() != want[i] {
			t.Errorf("target %d = %s, want %s", i, tg, want[i])
		}
	}
	if _, ok := e.Route("claude/claude-opus-4"); !ok {
		t.Error("direct provider/model route not resolved")
	}
}

func TestBuildMissingKeyNamesField(t *testing.T) {
	c, err := config.Parse([]byte(all))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_OPENAI_KEY": "sk-secret-123", "TEST_ANTHROPIC_KEY": "sk-ant-secret-456"}
	_, err = Build(context.Background(), c, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "providers.azure") || !strings.Contains(err.Error(), "TEST_AZURE_KEY") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Error("error leaks a key")
	}
}

func TestCost(t *testing.T) {
	cost := Cost(map[string]config.Price{"openai/gpt-4o-mini": {Input: 0.15, Output: 0.60}})
	got := cost("openai/gpt-4o-mini", chat.Usage{PromptTokens: 1_000_000, CompletionTokens: 500_000})
	if got < 0.4499 || got > 0.4501 {
		t.Errorf("cost = %v, want 0.45", got)
	}
	if cost("other/x", chat.Usage{PromptTokens: 10}) != 0 || Cost(nil) != nil {
		t.Error("unpriced targets must cost nothing")
	}
}

// Cached prompt tokens are priced at the cache rates, OpenAI's and
// Anthropic's reporting alike.
func TestCostWithPromptCache(t *testing.T) {
	cost := Cost(map[string]config.Price{
		"openai/gpt-4o":  {Input: 2.5, Output: 10, CacheRead: 1.25},
		"anthropic/opus": {Input: 15, Output: 75, CacheRead: 1.5, CacheWrite: 18.75},
		"plain/m":        {Input: 1, Output: 2},
	})
	// OpenAI: 1,000 prompt tokens of which 800 cached.
	u := chat.Usage{PromptTokens: 1000, CompletionTokens: 100, PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 800}}
	if got, want := cost("openai/gpt-4o", u), (200*2.5+800*1.25+100*10)/1e6; !approxEqual(got, want) {
		t.Errorf("openai: %g, want %g", got, want)
	}
	// Anthropic: 100 fresh, 500 read, 400 written (prompt tokens include all).
	u = chat.Usage{PromptTokens: 1000, CompletionTokens: 10, CacheReadInputTokens: 500, CacheCreationInputTokens: 400,
		PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 500}}
	if got, want := cost("anthropic/opus", u), (100*15+500*1.5+400*18.75+10*75)/1e6; !approxEqual(got, want) {
		t.Errorf("anthropic: %g, want %g", got, want)
	}
	// No cache prices: cached tokens cost what input costs.
	if got, want := cost("plain/m", u), (1000*1+10*2)/1e6; !approxEqual(got, want) {
		t.Errorf("plain: %g, want %g", got, want)
	}
}

func approxEqual(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
