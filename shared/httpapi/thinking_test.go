package httpapi

import (
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/sse"
)

// Claude answers a tool call while thinking with signed thinking blocks,
// and refuses the next turn unless the assistant turn sent back leads with
// them. Through the chat door the blocks come back as thinking_blocks
// (LiteLLM's shape) on the message, streamed and not, and a client that
// sends the message back as it got it continues the loop.

// thinkingToolAnswer is Claude's first turn: thinking, a redacted block, a
// tool call.
const thinkingToolAnswer = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Weather \"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"needs a tool.\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"c2lnLTE=\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgB\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

// wantBlocks is what a client must send back, in the door's JSON.
const wantBlocks = `[{"type":"thinking","thinking":"Weather needs a tool.","signature":"c2lnLTE="},{"type":"redacted_thinking","data":"EmwKAhgB"}]`

// lastMessages is the messages of the last request the upstream got.
func lastMessages(t *testing.T, u *upstream) []json.RawMessage {
	t.Helper()
	var msgs []json.RawMessage
	if err := json.Unmarshal(u.last()["messages"], &msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

const thinkingRequest = `{"model":"m","reasoning_effort":"low","messages":[{"role":"user","content":"Weather in Paris?"}],
 "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

func TestChatThinkingBlocksRoundTrip(t *testing.T) {
	up := newUpstream(t, thinkingToolAnswer)
	p, err := anthropic.New(anthropic.Options{Name: "ant", BaseURL: up.srv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, &engine.Route{Name: "m", Targets: []engine.Target{{Provider: p, Model: "claude-x"}}, Policy: engine.Policy{MaxAttempts: 1}})

	// Not streamed: the message carries the blocks whole.
	resp := post(t, srv.URL, thinkingRequest+`}`)
	var out struct {
		Choices []struct {
			Message map[string]json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	msg := out.Choices[0].Message
	if !jsonEqual(t, string(msg["thinking_blocks"]), wantBlocks) || string(msg["reasoning_content"]) != `"Weather needs a tool."` {
		t.Fatalf("message %s", mustJSON(t, msg))
	}

	// Streamed: reasoning_content streams as it comes; each block comes
	// once, whole, with an index, so accumulating by index (as
	// openai-python's stream helper does) gives the same blocks.
	resp = post(t, srv.URL, thinkingRequest+`,"stream":true}`)
	blocks, reasoning := accumulateThinking(t, resp.Body)
	resp.Body.Close()
	if reasoning != "Weather needs a tool." || !jsonEqual(t, stripIndex(t, blocks), wantBlocks) {
		t.Fatalf("streamed blocks %s, reasoning %q", blocks, reasoning)
	}

	// The message sent back as it came leads Claude's turn with its blocks.
	next := strings.TrimSuffix(thinkingRequest, `]`)
	next = strings.Replace(next, `"content":"Weather in Paris?"}]`, `"content":"Weather in Paris?"},`+
		mustJSON(t, msg)+`,{"role":"tool","tool_call_id":"toolu_1","content":"sunny"}]`, 1)
	resp = post(t, srv.URL, next+`]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("second turn: %d", resp.StatusCode)
	}
	msgs := lastMessages(t, up)
	var turn struct {
		Role    string            `json:"role"`
		Content []json.RawMessage `json:"content"`
	}
	_ = json.Unmarshal(msgs[1], &turn)
	if turn.Role != "assistant" || len(turn.Content) != 3 ||
		!jsonEqual(t, string(turn.Content[0]), `{"type":"thinking","thinking":"Weather needs a tool.","signature":"c2lnLTE="}`) ||
		!jsonEqual(t, string(turn.Content[1]), `{"type":"redacted_thinking","data":"EmwKAhgB"}`) ||
		!strings.Contains(string(turn.Content[2]), `"tool_use"`) {
		t.Errorf("assistant turn sent to Claude: %s", msgs[1])
	}

	// The same conversation to an OpenAI-compatible upstream: the blocks
	// mean nothing there and stay out; reasoning_content goes as sent.
	oup := newUpstream(t, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	op, err := openai.New(openai.Options{Name: "oai", BaseURL: oup.srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	osrv := server(t, &engine.Route{Name: "m", Targets: []engine.Target{{Provider: op, Model: "gpt-x"}}, Policy: engine.Policy{MaxAttempts: 1}})
	resp = post(t, osrv.URL, next+`]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("openai: %d", resp.StatusCode)
	}
	sent := string(lastMessages(t, oup)[1])
	if strings.Contains(sent, "thinking_blocks") || strings.Contains(sent, "c2lnLTE=") || !strings.Contains(sent, `"reasoning_content":"Weather needs a tool."`) {
		t.Errorf("assistant turn sent to OpenAI: %s", sent)
	}
}

// accumulateThinking reads a chat stream and joins thinking_blocks by
// index and reasoning_content, as openai-python's accumulator does.
func accumulateThinking(t *testing.T, body io.Reader) (string, string) {
	t.Helper()
	var blocks []map[string]any
	var reasoning strings.Builder
	r := sse.NewReader(body)
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		if string(e.Data) == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					ReasoningContent string           `json:"reasoning_content"`
					ThinkingBlocks   []map[string]any `json:"thinking_blocks"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatalf("chunk %s: %v", e.Data, err)
		}
		if len(c.Choices) == 0 {
			continue
		}
		reasoning.WriteString(c.Choices[0].Delta.ReasoningContent)
		for _, b := range c.Choices[0].Delta.ThinkingBlocks {
			i := int(b["index"].(float64))
			for len(blocks) <= i {
				blocks = append(blocks, map[string]any{})
			}
			for k, v := range b {
				if s, ok := v.(string); ok && k != "type" {
					prev, _ := blocks[i][k].(string)
					blocks[i][k] = prev + s
				} else {
					blocks[i][k] = v
				}
			}
		}
	}
	out, _ := json.Marshal(blocks)
	return string(out), reasoning.String()
}

func stripIndex(t *testing.T, blocks string) string {
	var bs []map[string]any
	if err := json.Unmarshal([]byte(blocks), &bs); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		delete(b, "index")
	}
	out, _ := json.Marshal(bs)
	return string(out)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Through the Responses door each signed block is a reasoning item whose
// encrypted_content is the signature (a redacted block: an item with the
// data and no text). Sent back, as input items or over
// previous_response_id, they lead the assistant turn again.
func TestResponsesThinkingRoundTrip(t *testing.T) {
	call := func(args string) provider.Event {
		return provider.Event{ToolCalls: []chat.ToolCallDelta{{Index: 0, ID: "toolu_1", Type: "function",
			Function: chat.FunctionCallDelta{Name: "get_weather", Arguments: args}}}}
	}
	up := &scripted{name: "up", events: []provider.Event{
		{Reasoning: "Weather "}, {Reasoning: "needs a tool."}, {ReasoningSignature: "c2lnLTE="},
		{RedactedReasoning: "EmwKAhgB"}, call(`{"city":`), call(`"Paris"}`), {FinishReason: "tool_calls"},
	}}
	srv := server(t, route("chat", up))
	const req = `{"model":"chat","input":"Weather in Paris?",` + weatherTool

	check := func(where string, got []outputItem) {
		t.Helper()
		if len(got) != 3 || got[0].Type != "reasoning" || got[0].EncryptedContent != "c2lnLTE=" ||
			len(got[0].Content) != 1 || got[0].Content[0].Text != "Weather needs a tool." ||
			got[1].Type != "reasoning" || got[1].EncryptedContent != "EmwKAhgB" || len(got[1].Content) != 0 ||
			got[2].Type != "function_call" || got[2].Arguments != `{"city":"Paris"}` {
			t.Fatalf("%s: items %+v", where, got)
		}
	}
	resp := postResponses(t, srv.URL, req+`,"stream":true}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	var streamed []outputItem
	for _, it := range s.items {
		streamed = append(streamed, *it)
	}
	check("streamed", streamed)
	first := decodeObject(t, postResponses(t, srv.URL, req+`}`))
	check("buffered", items(t, first))

	want := []chat.ThinkingBlock{{Type: "thinking", Thinking: "Weather needs a tool.", Signature: "c2lnLTE="},
		{Type: "redacted_thinking", Data: "EmwKAhgB"}}
	assistant := func(where string) {
		t.Helper()
		msgs := up.last().Messages
		if len(msgs) != 3 || msgs[1].Role != "assistant" || !reflect.DeepEqual(msgs[1].ThinkingBlocks, want) ||
			len(msgs[1].ToolCalls) != 1 || msgs[1].ToolCalls[0].ID != "toolu_1" || msgs[2].Role != "tool" {
			t.Errorf("%s: upstream got %+v", where, msgs)
		}
	}
	// The output items sent back as input.
	var output []string
	for _, raw := range first.Output {
		output = append(output, string(raw))
	}
	resp = postResponses(t, srv.URL, `{"model":"chat",`+weatherTool+`,"input":[{"role":"user","content":"Weather in Paris?"},`+
		strings.Join(output, ",")+`,{"type":"function_call_output","call_id":"toolu_1","output":"sunny"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("input items: %d", resp.StatusCode)
	}
	assistant("input items")
	// The stored response continued.
	resp = postResponses(t, srv.URL, `{"model":"chat",`+weatherTool+`,"previous_response_id":"`+first.ID+`",
		"input":[{"type":"function_call_output","call_id":"toolu_1","output":"sunny"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("previous_response_id: %d", resp.StatusCode)
	}
	assistant("previous_response_id")
}
