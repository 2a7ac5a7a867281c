package simulated

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

func request(msgs ...chat.Message) *provider.Request {
	return &provider.Request{Model: "sim-1", Chat: &chat.Request{Messages: msgs}}
}

func user(s string) chat.Message { return chat.Message{Role: "user", Content: chat.TextContent(s)} }
func assistant(s string) chat.Message {
	return chat.Message{Role: "assistant", Content: chat.TextContent(s)}
}

func drain(t *testing.T, s provider.Stream) (text, reasoning, finish string, usage *chat.Usage, err error) {
	t.Helper()
	defer s.Close()
	for {
		ev, e := s.Recv()
		if e == io.EOF {
			return
		}
		if e != nil {
			err = e
			return
		}
		text += ev.Content
		reasoning += ev.Reasoning
		if ev.FinishReason != "" {
			finish = ev.FinishReason
		}
		if ev.Usage != nil {
			u := *ev.Usage
			usage = &u
		}
	}
}

func TestDeterministicAnswer(t *testing.T) {
	p := New(Options{Tokens: 20})
	s1, _ := p.Stream(context.Background(), request(user("why are sluices useful")))
	a, _, finish, usage, err := drain(t, s1)
	s2, _ := p.Stream(context.Background(), request(user("why are sluices useful")))
	b, _, _, _, _ := drain(t, s2)
	s3, _ := p.Stream(context.Background(), request(user("something else")))
	c, _, _, _, _ := drain(t, s3)
	if err != nil || a != b || a == c || !strings.HasPrefix(a, `Simulated reply to "why are sluices useful":`) || finish != "stop" {
		t.Fatalf("a=%q b=%q c=%q finish=%q err=%v", a, b, c, finish, err)
	}
	if usage == nil || usage.CompletionTokens != 20 || usage.PromptTokens == 0 || usage.TotalTokens != usage.PromptTokens+20 {
		t.Errorf("usage %+v", usage)
	}
	if a != Text([]chat.Message{user("why are sluices useful")}, 20) {
		t.Error("Text disagrees with the stream")
	}
}

func TestOutputLimit(t *testing.T) {
	p := New(Options{Tokens: 20})
	limit := 5
	r := request(user("x"))
	r.Chat.MaxTokens = &limit
	s, _ := p.Stream(context.Background(), r)
	text, _, finish, usage, _ := drain(t, s)
	if finish != "length" || usage.CompletionTokens != 5 || text != Text(r.Chat.Messages, 5) {
		t.Errorf("finish %q usage %+v", finish, usage)
	}
}

func TestContinuesAPartialAnswer(t *testing.T) {
	full := Text([]chat.Message{user("q")}, 20)
	p := New(Options{Tokens: 20})
	for _, cut := range []int{1, 7, len(full) / 2, len(full) - 1} {
		s, _ := p.Stream(context.Background(), request(user("q"), assistant(full[:cut])))
		rest, _, _, _, err := drain(t, s)
		if err != nil || full[:cut]+rest != full {
			t.Errorf("cut at %d: got %q + %q", cut, full[:cut], rest)
		}
	}
	// A prefix that is not ours gets a fresh answer.
	s, _ := p.Stream(context.Background(), request(user("q"), assistant("Something else entirely")))
	if rest, _, _, _, _ := drain(t, s); rest != full {
		t.Errorf("foreign prefix: %q", rest)
	}
}

func TestReasoningComesFirst(t *testing.T) {
	p := New(Options{Tokens: 3, ReasoningTokens: 2})
	s, _ := p.Stream(context.Background(), request(user("x")))
	ev, _ := s.Recv()
	if ev.Visible() || ev.Reasoning == "" {
		t.Fatalf("first event %+v", ev)
	}
	_, reasoning, _, usage, _ := drain(t, s)
	if reasoning != "thinking " || usage.CompletionTokensDetails.ReasoningTokens != 2 {
		t.Errorf("reasoning %q usage %+v", reasoning, usage)
	}
}

func TestFaults(t *testing.T) {
	status := New(Options{Fault: &Fault{Mode: FaultStatus, Status: 429, RetryAfter: 2 * time.Second}})
	_, err := status.Stream(context.Background(), request(user("x")))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindRateLimited || pe.RetryAfter != 2*time.Second {
		t.Fatalf("status fault: %v", err)
	}
	cut := New(Options{Tokens: 10, Fault: &Fault{Mode: FaultCut, After: 3}})
	s, _ := cut.Stream(context.Background(), request(user("x")))
	text, _, _, _, err := drain(t, s)
	if !errors.As(err, &pe) || pe.Kind != provider.KindUnavailable || text != Text(request(user("x")).Chat.Messages, 10)[:len(text)] {
		t.Fatalf("cut fault: %q %v", text, err)
	}
	stall := New(Options{Tokens: 10, Fault: &Fault{Mode: FaultStall, After: 2}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s, _ = stall.Stream(ctx, request(user("x")))
	if _, _, _, _, err := drain(t, s); !errors.As(err, &pe) || pe.Kind != provider.KindTimeout {
		t.Fatalf("stall fault: %v", err)
	}
}

func TestFaultRateIsExact(t *testing.T) {
	p := New(Options{Fault: &Fault{Mode: FaultStatus, Status: 503, Rate: 0.25}})
	failed := 0
	for i := 0; i < 100; i++ {
		s, err := p.Stream(context.Background(), request(user("x")))
		if err != nil {
			failed++
			continue
		}
		s.Close()
	}
	if failed != 25 {
		t.Errorf("%d of 100 failed at rate 0.25", failed)
	}
}
