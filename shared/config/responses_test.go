package config

import (
	"strings"
	"testing"
)

func TestResponsesSettingsNameTheirField(t *testing.T) {
	_, err := Parse([]byte(`
providers: {a: {type: anthropic, api_key: {env: K}, responses_api: true}}
models: {m: {targets: [a/x]}}
state: {responses_ttl: -1s}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, field := range []string{"providers.a.responses_api", "state.responses_ttl"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
	c, err := Parse([]byte(`
providers: {o: {type: openai, base_url: "http://localhost:1/v1", responses_api: true}}
models: {m: {targets: [o/x]}}
state: {responses_ttl: 48h}
`))
	if err != nil || !*c.Providers["o"].ResponsesAPI || c.State.ResponsesTTL.Hours() != 48 {
		t.Fatalf("%+v, %v", c, err)
	}
}
