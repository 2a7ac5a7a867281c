package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the tests run this binary's main as a child process.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func child(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_RUN_MAIN=1", "SLUICE_CONFIG=", "SLUICE_CONFIG_JSON=", "OPENAI_API_KEY=", "ANTHROPIC_API_KEY=")
	return cmd
}

func TestBadConfigFailsAtStartNamingTheField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("providers: {p: {type: openai, base_url: 'not a url'}}\nmodels: {m: {targets: [p/x]}}\n"), 0o600)
	out, err := child("-config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, output %s", err, out)
	}
	if !strings.Contains(string(out), "providers.p.base_url") {
		t.Errorf("output does not name the field: %s", out)
	}
}

func TestServesWithBuiltInDefaults(t *testing.T) {
	cmd := child("-addr", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := ""
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
			url = rec.URL
			break
		}
	}
	if url == "" {
		t.Fatal("server did not report its address")
	}
	go io.Copy(io.Discard, stderr)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url+"/v1/chat/completions", "", strings.NewReader(
		`{"model":"sluice-fallback-demo","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"content":"Simulated"`) || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Provider") != "simulated" {
		t.Errorf("served by %q, want the healthy second target", resp.Header.Get("X-Sluice-Provider"))
	}
}
