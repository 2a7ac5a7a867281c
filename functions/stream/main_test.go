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
	post := func(path, body string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := post("/v1/chat/completions", `{"model":"sluice-fallback-demo","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"content":"Simulated"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Provider") != "simulated" {
		t.Errorf("served by %q, want the healthy second target", resp.Header.Get("X-Sluice-Provider"))
	}

	// Every door works on the built-in defaults too.
	resp, body = post("/v1/messages", `{"model":"sluice-fallback-demo","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`)
	var msg struct {
		Type    string `json:"type"`
		Content []struct {
			Type, Text string
		} `json:"content"`
		StopReason string `json:"stop_reason"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &msg) != nil || msg.Type != "message" || len(msg.Content) != 1 ||
		!strings.HasPrefix(msg.Content[0].Text, "Simulated") || msg.StopReason != "max_tokens" || resp.Header.Get("X-Sluice-Provider") != "simulated" {
		t.Errorf("messages: %d %s", resp.StatusCode, body)
	}
	resp, body = post("/v1/responses", `{"model":"sluice-fallback-demo","max_output_tokens":3,"input":"hi"}`)
	var r struct {
		ID, Object, Status string
		Output             []struct {
			Type    string
			Content []struct{ Type, Text string }
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Object != "response" || !strings.HasPrefix(r.ID, "resp_") ||
		len(r.Output) != 1 || r.Output[0].Type != "message" || !strings.HasPrefix(r.Output[0].Content[0].Text, "Simulated") {
		t.Errorf("responses: %d %s", resp.StatusCode, body)
	}
	// The stored response can be read back (the default store is memory).
	get, err := client.Get(url + "/v1/responses/" + r.ID)
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != 200 {
		t.Errorf("GET the stored response: %d", get.StatusCode)
	}
	resp, body = post("/v1/embeddings", `{"model":"sluice-embed","input":["first text","second text"]}`)
	var emb struct {
		Object string
		Data   []struct {
			Index     int
			Embedding []float64
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &emb) != nil || emb.Object != "list" || len(emb.Data) != 2 ||
		emb.Data[1].Index != 1 || len(emb.Data[0].Embedding) == 0 || len(emb.Data[0].Embedding) != len(emb.Data[1].Embedding) {
		t.Errorf("embeddings: %d %.300s", resp.StatusCode, body)
	}
}
