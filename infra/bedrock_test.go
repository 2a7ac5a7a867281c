package main

import (
	"reflect"
	"testing"
)

// bedrockModels reads the targets of every provider of type bedrock, in
// both target spellings, and nothing else.
func TestBedrockModels(t *testing.T) {
	chat, embed := bedrockModels(`{"providers":{"b":{"type":"bedrock"},"b2":{"type":"bedrock"},"o":{"type":"openai"}},
		"models":{"x":{"targets":["b/m1",{"provider":"b2","model":"us.m2"},"o/gpt"]},"y":{"targets":["b/m1"]}},
		"embeddings":{"models":{"e":{"targets":[{"provider":"b","model":"amazon.titan-embed-text-v2:0"},{"provider":"o","model":"te3"}]}}}}`)
	if !reflect.DeepEqual(chat, []string{"m1", "us.m2"}) || !reflect.DeepEqual(embed, []string{"amazon.titan-embed-text-v2:0"}) {
		t.Fatalf("chat %v embed %v", chat, embed)
	}
	if c, e := bedrockModels(""); c != nil || e != nil {
		t.Fatal("no config, no models")
	}
}
