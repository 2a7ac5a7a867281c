package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/responses"
	"github.com/sluice-llm/sluice/shared/sse"
)

// respEvent is one streamed Responses event, every member a test reads.
type respEvent struct {
	Name         string            `json:"-"` // the SSE event name
	Type         string            `json:"type"`
	Seq          *int              `json:"sequence_number"`
	OutputIndex  *int              `json:"output_index"`
	ContentIndex *int              `json:"content_index"`
	ItemID       string            `json:"item_id"`
	Item         *outputItem       `json:"item"`
	Part         *outputPart       `json:"part"`
	Delta        string            `json:"delta"`
	Text         *string           `json:"text"`
	Refusal      *string           `json:"refusal"`
	Arguments    *string           `json:"arguments"`
	Name2        string            `json:"name"`
	Response     *responses.Object `json:"response"`
	Code         string            `json:"code"`
	Message      string            `json:"message"`
}

type outputItem struct {
	ID        string       `json:"id"`
	Type      string       `json:"type"`
	Status    string       `json:"status"`
	Role      string       `json:"role"`
	Content   []outputPart `json:"content"`
	CallID    string       `json:"call_id"`
	Name      string       `json:"name"`
	Arguments string       `json:"arguments"`
	// EncryptedContent of a reasoning item: Claude's signature, or a
	// redacted block's data.
	EncryptedContent string `json:"encrypted_content"`
}

type outputPart struct {
	Type    string `json:"type"`
	Text    string `json:"text"`
	Refusal string `json:"refusal"`
}

// respStream is what a strict client made of a stream.
type respStream struct {
	events []respEvent
	// items are the output items as the deltas built them, by index.
	items    []*outputItem
	terminal *respEvent // response.completed, .incomplete or .failed
	errEvent *respEvent
}

// readResponses reads a Responses stream and checks every rule a strict
// client relies on (the Python SDK's stream helper checks most of them):
// event names match types, sequence numbers count up from 0 without gaps,
// the lifecycle starts with created and in_progress and ends with one
// terminal event naming the same response, items are added once at
// consecutive output indexes, deltas go only to items (and parts) that are
// open, each item's done events repeat exactly what its deltas built, and
// a completed response's output is exactly the items that were done.
func readResponses(t *testing.T, body io.Reader) *respStream {
	t.Helper()
	s := &respStream{}
	r := sse.NewReader(body)
	done := map[int]bool{}
	partDone := map[[2]int]bool{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream read: %v", err)
		}
		var ev respEvent
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatalf("event %q: %v", e.Data, err)
		}
		ev.Name = string(e.Type)
		n := len(s.events)
		where := fmt.Sprintf("event %d (%s)", n, ev.Type)
		if ev.Name != ev.Type {
			t.Fatalf("%s: SSE name %q differs from type", where, ev.Name)
		}
		if ev.Seq == nil || *ev.Seq != n {
			t.Fatalf("%s: sequence_number %v, want %d", where, ev.Seq, n)
		}
		if s.terminal != nil {
			t.Fatalf("%s after the terminal %s", where, s.terminal.Type)
		}
		switch {
		case n == 0 && ev.Type != "response.created", n == 1 && ev.Type != "response.in_progress":
			t.Fatalf("%s: the lifecycle must start with response.created, response.in_progress", where)
		}
		if ev.Response != nil && n > 0 && ev.Response.ID != s.events[0].Response.ID {
			t.Fatalf("%s: response id %s changed from %s", where, ev.Response.ID, s.events[0].Response.ID)
		}
		item := func() *outputItem {
			if ev.OutputIndex == nil || *ev.OutputIndex >= len(s.items) {
				t.Fatalf("%s: output_index %v names no added item", where, ev.OutputIndex)
			}
			it := s.items[*ev.OutputIndex]
			if done[*ev.OutputIndex] {
				t.Fatalf("%s: item %d is already done", where, *ev.OutputIndex)
			}
			if ev.ItemID != "" && ev.ItemID != it.ID {
				t.Fatalf("%s: item_id %s, but output %d is %s", where, ev.ItemID, *ev.OutputIndex, it.ID)
			}
			return it
		}
		part := func(it *outputItem) *outputPart {
			if ev.ContentIndex == nil || *ev.ContentIndex >= len(it.Content) {
				t.Fatalf("%s: content_index %v names no added part of %s", where, ev.ContentIndex, it.ID)
			}
			if partDone[[2]int{*ev.OutputIndex, *ev.ContentIndex}] {
				t.Fatalf("%s: part is already done", where)
			}
			return &it.Content[*ev.ContentIndex]
		}
		switch ev.Type {
		case "response.output_item.added":
			if ev.OutputIndex == nil || *ev.OutputIndex != len(s.items) || ev.Item == nil || ev.Item.ID == "" {
				t.Fatalf("%s: added at %v, want the next index %d with an item id", where, ev.OutputIndex, len(s.items))
			}
			for _, other := range s.items {
				if other.ID == ev.Item.ID {
					t.Fatalf("%s: item id %s repeated", where, ev.Item.ID)
				}
			}
			if ev.Item.Status != "in_progress" || len(ev.Item.Content) != 0 || ev.Item.Arguments != "" {
				t.Fatalf("%s: an added item starts empty and in_progress: %+v", where, ev.Item)
			}
			it := *ev.Item
			s.items = append(s.items, &it)
		case "response.content_part.added":
			it := item()
			if *ev.ContentIndex != len(it.Content) || ev.Part == nil {
				t.Fatalf("%s: part added at %d, want %d", where, *ev.ContentIndex, len(it.Content))
			}
			it.Content = append(it.Content, *ev.Part)
		case "response.output_text.delta", "response.reasoning_text.delta":
			p := part(item())
			want := map[string]string{"response.output_text.delta": "output_text", "response.reasoning_text.delta": "reasoning_text"}[ev.Type]
			if p.Type != want {
				t.Fatalf("%s: delta for a %s part", where, p.Type)
			}
			p.Text += ev.Delta
		case "response.refusal.delta":
			part(item()).Refusal += ev.Delta
		case "response.function_call_arguments.delta":
			it := item()
			if it.Type != "function_call" {
				t.Fatalf("%s: arguments for a %s item", where, it.Type)
			}
			it.Arguments += ev.Delta
		case "response.output_text.done", "response.reasoning_text.done":
			if p := part(item()); ev.Text == nil || *ev.Text != p.Text {
				t.Fatalf("%s: done text %v, deltas built %q", where, ev.Text, p.Text)
			}
		case "response.refusal.done":
			if p := part(item()); ev.Refusal == nil || *ev.Refusal != p.Refusal {
				t.Fatalf("%s: done refusal %v, deltas built %q", where, ev.Refusal, p.Refusal)
			}
		case "response.content_part.done":
			it := item()
			p := part(it)
			if ev.Part == nil || ev.Part.Text != p.Text || ev.Part.Refusal != p.Refusal || ev.Part.Type != p.Type {
				t.Fatalf("%s: part done %+v, built %+v", where, ev.Part, p)
			}
			partDone[[2]int{*ev.OutputIndex, *ev.ContentIndex}] = true
		case "response.function_call_arguments.done":
			if it := item(); ev.Arguments == nil || *ev.Arguments != it.Arguments || ev.Name2 != it.Name {
				t.Fatalf("%s: done arguments %v (%s), deltas built %q (%s)", where, ev.Arguments, ev.Name2, it.Arguments, it.Name)
			}
		case "response.output_item.done":
			it := item()
			if ev.Item == nil || ev.Item.ID != it.ID || ev.Item.Type != it.Type || ev.Item.CallID != it.CallID || ev.Item.Arguments != it.Arguments ||
				ev.Item.Status == "in_progress" || fmt.Sprint(ev.Item.Content) != fmt.Sprint(it.Content) {
				t.Fatalf("%s: item done %+v, built %+v", where, ev.Item, it)
			}
			// encrypted_content has no delta: it comes whole with the
			// done item, as OpenAI sends it.
			it.Status, it.EncryptedContent = ev.Item.Status, ev.Item.EncryptedContent
			done[*ev.OutputIndex] = true
		case "response.completed", "response.incomplete":
			for i := range s.items {
				if !done[i] {
					t.Fatalf("%s: item %d never done", where, i)
				}
			}
			if got, want := len(ev.Response.Output), len(s.items); got != want {
				t.Fatalf("%s: %d output items, %d were streamed", where, got, want)
			}
			for i, raw := range ev.Response.Output {
				var it outputItem
				_ = json.Unmarshal(raw, &it)
				if fmt.Sprint(it) != fmt.Sprint(*s.items[i]) {
					t.Fatalf("%s: output[%d] %+v, streamed %+v", where, i, it, *s.items[i])
				}
			}
			s.terminal = &ev
		case "response.failed":
			s.terminal = &ev
		case "error":
			s.errEvent = &ev
		case "response.created", "response.in_progress":
		default:
			t.Fatalf("%s: unexpected event", where)
		}
		s.events = append(s.events, ev)
	}
	if s.terminal == nil {
		t.Fatalf("the stream ended without a terminal event after %d events", len(s.events))
	}
	return s
}

// text is the output text of every message item.
func (s *respStream) text() string {
	var b strings.Builder
	for _, it := range s.items {
		for _, p := range it.Content {
			if it.Type == "message" && p.Type == "output_text" {
				b.WriteString(p.Text)
			}
		}
	}
	return b.String()
}

// scripted is a provider that streams a fixed list of events, then ends
// or fails, and records what it was asked.
type scripted struct {
	name   string
	events []provider.Event
	err    error

	mu   sync.Mutex
	reqs []*chat.Request
}

func (p *scripted) Name() string { return p.name }

func (p *scripted) Stream(_ context.Context, req *provider.Request) (provider.Stream, error) {
	p.mu.Lock()
	p.reqs = append(p.reqs, req.Chat)
	p.mu.Unlock()
	return &scriptStream{p: p}, nil
}

func (p *scripted) last() *chat.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs[len(p.reqs)-1]
}

type scriptStream struct {
	p *scripted
	i int
}

func (s *scriptStream) Recv() (*provider.Event, error) {
	if s.i < len(s.p.events) {
		ev := s.p.events[s.i]
		s.i++
		return &ev, nil
	}
	if s.p.err != nil {
		return nil, s.p.err
	}
	return nil, io.EOF
}

func (s *scriptStream) Close() error { return nil }

func postResponses(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url+"/v1/responses", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func decodeObject(t *testing.T, resp *http.Response) *responses.Object {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var o responses.Object
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		t.Fatal(err)
	}
	return &o
}

func items(t *testing.T, o *responses.Object) []outputItem {
	t.Helper()
	var out []outputItem
	for _, raw := range o.Output {
		var it outputItem
		if err := json.Unmarshal(raw, &it); err != nil {
			t.Fatal(err)
		}
		out = append(out, it)
	}
	return out
}
