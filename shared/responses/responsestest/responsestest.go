// Package responsestest is the contract every responses.Store must pass. An
// implementation's test calls Run with a constructor.
package responsestest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/responses"
)

var ctx = context.Background()

// Run runs the contract suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) responses.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

func stored(tenant, id string, input ...string) *responses.Stored {
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &responses.Stored{ID: id, Tenant: tenant, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Response: json.RawMessage(`{"id":"` + id + `","object":"response","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]}]}`)}
	for _, in := range input {
		s.Input = append(s.Input, json.RawMessage(in))
	}
	return s
}

func same(t *testing.T, got, want *responses.Stored) {
	t.Helper()
	if got.ID != want.ID || got.Tenant != want.Tenant || !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("got %s/%s %v..%v, want %s/%s %v..%v", got.Tenant, got.ID, got.CreatedAt, got.ExpiresAt,
			want.Tenant, want.ID, want.CreatedAt, want.ExpiresAt)
	}
	if !reflect.DeepEqual(compact(t, got.Input), compact(t, want.Input)) || string(compact1(t, got.Response)) != string(compact1(t, want.Response)) {
		t.Fatalf("documents differ:\n got %s %s\nwant %s %s", got.Input, got.Response, want.Input, want.Response)
	}
}

func compact(t *testing.T, raws []json.RawMessage) []string {
	out := []string{}
	for _, r := range raws {
		out = append(out, string(compact1(t, r)))
	}
	return out
}

func compact1(t *testing.T, r json.RawMessage) []byte {
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		t.Fatalf("stored JSON %q: %v", r, err)
	}
	b, _ := json.Marshal(v)
	return b
}

func newID() string { return "resp_" + rand.Text() }

var cases = []struct {
	name string
	run  func(t *testing.T, s responses.Store)
}{
	{"put then get round-trips", func(t *testing.T, s responses.Store) {
		want := stored("acme", newID(), `{"type":"message","role":"user","content":"hello"}`,
			`{"type":"function_call_output","call_id":"call_1","output":"{\"temp\":21}"}`)
		if err := s.Put(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "acme", want.ID)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, want)
		items, err := got.Conversation()
		if err != nil || len(items) != 3 || items[2].Type != "message" || items[2].Role != "assistant" {
			t.Fatalf("conversation %+v, %v", items, err)
		}
	}},
	{"unknown id is not found", func(t *testing.T, s responses.Store) {
		if _, err := s.Get(ctx, "acme", newID()); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "acme", newID()); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("delete err = %v, want ErrNotFound", err)
		}
	}},
	{"another tenant sees nothing and deletes nothing", func(t *testing.T, s responses.Store) {
		r := stored("acme", newID(), `{"type":"message","role":"user","content":"secret"}`)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{"globex", ""} {
			if _, err := s.Get(ctx, other, r.ID); !errors.Is(err, responses.ErrNotFound) {
				t.Fatalf("tenant %q read acme's response: %v", other, err)
			}
			if err := s.Delete(ctx, other, r.ID); !errors.Is(err, responses.ErrNotFound) {
				t.Fatalf("tenant %q delete: %v", other, err)
			}
		}
		if _, err := s.Get(ctx, "acme", r.ID); err != nil {
			t.Fatalf("owner lost its response: %v", err)
		}
	}},
	{"open mode has one empty tenant", func(t *testing.T, s responses.Store) {
		r := stored("", newID(), `{"type":"message","role":"user","content":"hi"}`)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, r)
	}},
	{"expired is not found before the backend removes it", func(t *testing.T, s responses.Store) {
		r := stored("acme", newID(), `{"type":"message","role":"user","content":"old"}`)
		r.CreatedAt, r.ExpiresAt = r.CreatedAt.Add(-2*time.Hour), r.CreatedAt.Add(-time.Hour)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "acme", r.ID); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("expired response: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "acme", r.ID); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("delete expired: err = %v, want ErrNotFound", err)
		}
	}},
	{"delete removes it", func(t *testing.T, s responses.Store) {
		r := stored("acme", newID(), `{"type":"message","role":"user","content":"bye"}`)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "acme", r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "acme", r.ID); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if err := s.Delete(ctx, "acme", r.ID); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	}},
	{"a conversation beyond one DynamoDB item round-trips", func(t *testing.T, s responses.Store) {
		// Random bytes do not compress: about 1.2 MB stored, in parts.
		var input []string
		for i := range 3 {
			b := make([]byte, 300<<10)
			_, _ = rand.Read(b)
			img := "data:image/png;base64," + base64.StdEncoding.EncodeToString(b)
			input = append(input, fmt.Sprintf(`{"type":"message","role":"user","content":[{"type":"input_text","text":"picture %d"},{"type":"input_image","image_url":%q}]}`, i, img))
		}
		r := stored("acme", newID(), input...)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "acme", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, r)
		if err := s.Delete(ctx, "acme", r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "acme", r.ID); !errors.Is(err, responses.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	}},
	{"stored values are not shared with the caller", func(t *testing.T, s responses.Store) {
		r := stored("acme", newID(), `{"type":"message","role":"user","content":"original"}`)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		copy(r.Input[0], []byte(`{"type":"message","role":"user","content":"CHANGED!"}`))
		got, err := s.Get(ctx, "acme", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(compact1(t, got.Input[0])) != `{"content":"original","role":"user","type":"message"}` {
			t.Fatalf("the store kept the caller's memory: %s", got.Input[0])
		}
	}},
}
