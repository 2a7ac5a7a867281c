package chat

import "testing"

func TestEstimateTokens(t *testing.T) {
	small := &Request{Messages: []Message{{Role: "user", Content: TextContent("hi")}}}
	big := &Request{Messages: []Message{{Role: "user", Content: TextContent(string(make([]byte, 4000)))}}}
	img := &Request{Messages: []Message{{Role: "user", Content: Content{IsParts: true, Parts: []Part{{Type: "image_url", ImageURL: &ImageURL{URL: "data:,"}}}}}}}
	if s, b := small.EstimateTokens(), big.EstimateTokens(); s < 5 || s > 10 || b < 1000 || b > 1010 {
		t.Errorf("small %d big %d", s, b)
	}
	if img.EstimateTokens() < 765 {
		t.Errorf("image %d", img.EstimateTokens())
	}
}

func TestEstimateTokensRounding(t *testing.T) {
	for _, c := range []struct {
		text string
		want int
	}{{"", 7}, {"a", 8}, {"abcd", 8}, {"abcde", 9}} {
		r := Request{Messages: []Message{{Role: "user", Content: TextContent(c.text)}}}
		if got := r.EstimateTokens(); got != c.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", c.text, got, c.want)
		}
	}
}

func TestCapOutput(t *testing.T) {
	p := func(n int) *int { return &n }
	r := &Request{Model: "m", MaxTokens: p(4_000_000_000_000_000_000), MaxCompletionTokens: p(100)}
	if r.CapOutput(0) != r || r.CapOutput(-1) != r {
		t.Error("no limit must return the request itself")
	}
	c := r.CapOutput(4096)
	if c == r || *c.MaxTokens != 4096 || *c.MaxCompletionTokens != 100 || c.Model != "m" {
		t.Errorf("CapOutput(4096) = %+v", c)
	}
	if *r.MaxTokens != 4_000_000_000_000_000_000 {
		t.Error("CapOutput changed the original")
	}
	if small := (&Request{MaxTokens: p(10)}); small.CapOutput(4096) != small {
		t.Error("a limit under the cap must return the request itself")
	}
	if none := (&Request{}); none.CapOutput(4096) != none || none.OutputLimit() != 0 {
		t.Error("a request without a limit keeps none: the provider's default applies")
	}
}
