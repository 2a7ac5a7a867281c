package rie

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Options configure Start.
type Options struct {
	RIE       string // the emulator binary (Install)
	Bootstrap string // the function binary (Build)
	// Env is the whole environment of the emulator, which hands it on to the
	// function as Lambda hands it a function's configuration. nil means
	// os.Environ(); MinimalEnv gives a clean one.
	Env []string
	// Timeout is the function timeout (AWS_LAMBDA_FUNCTION_TIMEOUT); 0 keeps
	// the emulator's 300 s.
	Timeout time.Duration
	// Log receives every line the emulator and the function print, for
	// humans; nil discards them. Lines are parsed either way.
	Log io.Writer
}

// MinimalEnv is a clean environment for a function under the emulator:
// the process basics plus extra ("KEY=value"). Nothing of the caller's
// environment leaks in, so a developer's OPENAI_API_KEY or SLUICE_CONFIG
// cannot change what a test sees.
func MinimalEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + os.TempDir(), "TZ=UTC"}
	return append(env, extra...)
}

// Instance is one running emulator with one function in it: one Lambda
// execution environment. It serves one invocation at a time, like Lambda.
type Instance struct {
	url  string
	cmd  *exec.Cmd
	logs *logState
	http *http.Client

	invokeMu sync.Mutex // one invocation at a time per environment
	exited   chan struct{}
	waitErr  error
}

// startAttempts bounds retries when a picked port was taken by someone else
// between our probe and the emulator's bind (the machine is shared).
const startAttempts = 4

// Start runs the emulator with the function and waits until it accepts
// invocations. The function itself starts (its init phase) on the first
// Invoke, as on Lambda.
func Start(ctx context.Context, o Options) (*Instance, error) {
	if o.RIE == "" || o.Bootstrap == "" {
		return nil, errors.New("rie: Options.RIE and Options.Bootstrap are required")
	}
	var errs []error
	for range startAttempts {
		in, err := start(ctx, o)
		if err == nil {
			return in, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("rie: start %s: %w", filepath.Base(filepath.Dir(o.Bootstrap)), errors.Join(errs...))
}

func start(ctx context.Context, o Options) (*Instance, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	// debug level: the only place the emulator says that the runtime posted
	// to /error (an invocation error) rather than /response, and with what
	// content type; see logState.
	cmd := exec.Command(o.RIE, "--log-level", "debug",
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		o.Bootstrap)
	cmd.Dir = filepath.Dir(o.Bootstrap)
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	if o.Timeout > 0 {
		env = append(env[:len(env):len(env)], "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(o.Timeout.Seconds())))
	}
	cmd.Env = env
	logs := newLogState(o.Log)
	cmd.Stdout = logs.writer(fromStdout)
	cmd.Stderr = logs.writer(fromStderr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	in := &Instance{url: "http://" + addr + "/2015-03-31/functions/function/invocations", cmd: cmd, logs: logs,
		http: &http.Client{}, exited: make(chan struct{})}
	go func() {
		in.waitErr = cmd.Wait()
		logs.close()
		close(in.exited)
	}()
	if err := in.awaitReady(ctx, addr); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// awaitReady waits for the runtime API server (logged at start) and then
// for the invoke endpoint to accept connections. The deadline is a hang
// guard only.
func (in *Instance) awaitReady(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-in.exited:
			return fmt.Errorf("emulator exited at start (%v):\n%s", in.waitErr, in.logs.tail(20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if in.logs.runtimeAPIUp() {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("emulator not ready after 30s:\n%s", in.logs.tail(20))
}

// Invoke sends one event and returns what the function answered. An
// invocation error (the runtime posted to /error, or the environment
// failed) is reported in Result.Error, not as err: err means the emulator
// itself could not be used.
func (in *Instance) Invoke(ctx context.Context, payload []byte) (*Result, error) {
	in.invokeMu.Lock()
	defer in.invokeMu.Unlock()
	id := newRequestID()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("rie: invoke: %w", err)
	}
	req.Header.Set("X-Amzn-RequestId", id)
	resp, err := in.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rie: invoke: %w\n%s", err, in.logs.tail(20))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("rie: read response: %w", err)
	}
	res := &Result{RequestID: id, HTTPStatus: resp.StatusCode, Payload: body}
	if resp.StatusCode != http.StatusOK {
		// The emulator answers non-200 only when the environment failed
		// (runtime crashed, init failed, timeout reservation): no REPORT.
		res.Error = &FunctionError{Type: "Emulator.HTTP" + strconv.Itoa(resp.StatusCode), Message: string(body)}
		in.logs.fill(res, false)
		return res, nil
	}
	// The emulator prints REPORT and logs RTDONE before it answers, but our
	// readers may not have consumed them yet; wait for both (hang guard).
	if err := in.logs.await(ctx, id, 30*time.Second, in.exited); err != nil {
		return nil, fmt.Errorf("rie: invocation %s: %w\n%s", id, err, in.logs.tail(20))
	}
	in.logs.fill(res, true)
	if res.Error == nil && bytes.HasPrefix(bytes.TrimSpace(body), []byte("Task timed out after")) {
		res.Error = &FunctionError{Type: "Sandbox.Timedout", Message: string(body)}
	}
	return res, nil
}

// Logs returns everything printed so far, emulator and function lines mixed.
func (in *Instance) Logs() string { return in.logs.all() }

// Close stops the emulator and the function.
func (in *Instance) Close() {
	if in.cmd.Process != nil {
		in.cmd.Process.Kill()
	}
	<-in.exited
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
