package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoQueueHintNamesWhatExists: the hint a local run without a queue
// prints must send the user to a script and a make target that exist.
func TestNoQueueHintNamesWhatExists(t *testing.T) {
	scripts := regexp.MustCompile(`scripts/[A-Za-z0-9_.-]+`).FindAllString(noQueueHint, -1)
	targets := regexp.MustCompile("make ([A-Za-z0-9_-]+)").FindAllStringSubmatch(noQueueHint, -1)
	if len(scripts) == 0 || len(targets) == 0 {
		t.Fatalf("the hint names no script or no make target: %q", noQueueHint)
	}
	for _, s := range scripts {
		if _, err := os.Stat(filepath.Join("..", "..", s)); err != nil {
			t.Errorf("the hint names %s: %v", s, err)
		}
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range targets {
		if !strings.Contains("\n"+string(mk), "\n"+m[1]+":") {
			t.Errorf("the hint names make %s, which the Makefile does not define", m[1])
		}
	}
}
