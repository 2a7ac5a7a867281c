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
