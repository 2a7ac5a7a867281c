package runtimetest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/scripts/rie"
)

// TestEvents invokes each function's binary under the emulator with each
// event of the table, each in a fresh execution environment (a cold start).
func TestEvents(t *testing.T) {
	for _, c := range cases {
		t.Run(c.fn+"/"+c.event, func(t *testing.T) {
			t.Parallel()
			payload, err := os.ReadFile(filepath.Join(root, "events", c.event))
			if err != nil {
				t.Fatal(err)
			}
			env := c.env
			for i, e := range env { // config paths are relative to the repository
				if k, v, _ := strings.Cut(e, "="); k == "SLUICE_CONFIG" {
					env = slices.Clone(env)
					env[i] = k + "=" + filepath.Join(root, v)
				}
			}
			in := startFn(t, c.fn, env...)
			res := invoke(t, in, c.fn, payload, true)
			if c.today != nil {
				if err := c.today.check(res, payload); err != nil {
					t.Fatalf("until %s lands, want %s: %v", c.pending, c.today, err)
				}
			}
			err = c.want.check(res, payload)
			switch {
			case c.pending == "" && err != nil:
				t.Fatalf("want %s: %v", c.want, err)
			case c.pending != "" && err != nil:
				t.Skipf("PENDING %s: expected to fail until it lands; want %s: %v", c.pending, c.want, err)
			case c.pending != "":
				t.Fatalf("%s has landed: this case passes now; delete its pending (and today) fields in cases_test.go", c.pending)
			}
		})
	}
}

// TestEveryEventHasAnExpectation: an event file that no case uses is an
// untested event, and a case naming a missing file is a typo.
func TestEveryEventHasAnExpectation(t *testing.T) {
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	used := map[string]bool{}
	for _, c := range cases {
		if !rie.ValidFunction(c.fn) {
			t.Errorf("case for unknown function %q", c.fn)
		}
		used[c.event] = true
	}
	files := eventFiles(t)
	for _, f := range files {
		if !used[f] {
			t.Errorf("events/%s has no expectation in scripts/runtimetest/cases_test.go", f)
		}
	}
	for e := range used {
		if !slices.Contains(files, e) {
			t.Errorf("cases_test.go names events/%s, which does not exist", e)
		}
	}
	for _, fn := range rie.Functions {
		if !slices.ContainsFunc(cases, func(c eventCase) bool { return c.fn == fn && c.event == "unknown-event.json" }) {
			t.Errorf("%s has no case for unknown-event.json", fn)
		}
	}
}

// TestWarmInvocations sends each function's sample event twice to one
// environment: the runtime loop must serve a second event, without a new
// init (no Init Duration in its REPORT).
func TestWarmInvocations(t *testing.T) {
	samples := map[string]struct {
		event string
		want  want
	}{
		"stream":      {"stream-function-url-not-streamed.json", urlWant{framing: streamed, status: 200, body: completionBody{}}},
		"orchestrate": {"orchestrate-function-url.json", urlWant{framing: buffered, status: 200, body: completionBody{}}},
		"embed":       {"embed-sqs.json", batchWant{failed: []string{embedDoc2}}}, // the second time doc-1 and doc-3 are skipped as unchanged
	}
	for fn, s := range samples {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			payload, err := os.ReadFile(filepath.Join(root, "events", s.event))
			if err != nil {
				t.Fatal(err)
			}
			in := startFn(t, fn)
			for i, cold := range []bool{true, false} {
				res := invoke(t, in, fn, payload, cold)
				if err := s.want.check(res, payload); err != nil {
					t.Fatalf("invocation %d: %v", i+1, err)
				}
			}
		})
	}
}
