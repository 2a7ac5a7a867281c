package runtimetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/scripts/rie"
)

// The harness is built once per test binary: the emulator and one bootstrap
// per function. Each case then gets its own emulator instance (its own cold
// start), and cases run in parallel up to maxInstances.
var (
	root       string
	emulator   string
	bootstraps = map[string]string{}
	setupErr   error
	slots      = make(chan struct{}, maxInstances)

	coldMu sync.Mutex
	colds  = map[string][]rie.Result{} // function → cold invocations, for the summary
)

// maxInstances bounds concurrent emulators: the machine has 2 shared cores,
// and the functions mostly wait on the simulated provider's latency.
const maxInstances = 4

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	setupErr = setup(ctx)
	cancel()
	code := m.Run()
	printColdStarts()
	os.Exit(code)
}

func setup(ctx context.Context) error {
	var err error
	if root, err = rie.Root(); err != nil {
		return err
	}
	if emulator, err = rie.Install(ctx, root); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-runtimetest-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	// Builds run one after another: in parallel they would only fight over
	// the same two cores and the build cache.
	for _, fn := range rie.Functions {
		if bootstraps[fn], err = rie.Build(ctx, root, fn, dir, rie.BuildOptions{Race: raceBuild}); err != nil {
			return err
		}
	}
	return nil
}

// startFn starts fn under a fresh emulator with env added to a clean
// environment. The instance stops when the test ends.
func startFn(t *testing.T, fn string, env ...string) *rie.Instance {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("runtime harness setup: %v", setupErr)
	}
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
	var log strings.Builder
	var logMu sync.Mutex
	in, err := rie.Start(context.Background(), rie.Options{RIE: emulator, Bootstrap: bootstraps[fn],
		Env: rie.MinimalEnv(append(env, "AWS_LAMBDA_FUNCTION_NAME=sluice-"+fn)...), Timeout: 60 * time.Second,
		Log: writerFunc(func(p []byte) { logMu.Lock(); log.Write(p); logMu.Unlock() })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if t.Failed() {
			logMu.Lock()
			t.Logf("emulator and function log:\n%s", log.String())
			logMu.Unlock()
		}
	})
	return in
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// invoke sends payload and checks what every invocation must satisfy: a
// REPORT line, no data race, and the cold-start numbers on a first call.
func invoke(t *testing.T, in *rie.Instance, fn string, payload []byte, cold bool) *rie.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard only
	defer cancel()
	res, err := in.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if res.DataRace {
		t.Errorf("data race in %s:\n%s", fn, strings.Join(res.Logs, "\n"))
	}
	if res.HTTPStatus == 200 {
		if res.Report.Duration <= 0 || res.Report.BilledDuration < res.Report.Duration.Truncate(time.Millisecond) {
			t.Errorf("REPORT line without sane durations: %q", res.Report.Line)
		}
		if cold != res.Report.HasInit || cold != (res.RuntimeInit > 0) {
			t.Errorf("cold=%v but REPORT Init Duration present=%v, runtime INIT REPORT %v (%q)", cold, res.Report.HasInit, res.RuntimeInit, res.Report.Line)
		}
	}
	if cold && res.RuntimeInit > 0 {
		t.Logf("%s cold start: runtime init %.1f ms (emulator's REPORT Init Duration %.2f ms), first invocation %.1f ms",
			fn, ms(res.RuntimeInit), ms(res.Report.InitDuration), ms(res.Report.Duration))
		coldMu.Lock()
		colds[fn] = append(colds[fn], *res)
		coldMu.Unlock()
	}
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printColdStarts summarises init durations per function (shown with -v).
func printColdStarts() {
	coldMu.Lock()
	defer coldMu.Unlock()
	fns := make([]string, 0, len(colds))
	for fn := range colds {
		fns = append(fns, fn)
	}
	sort.Strings(fns)
	race := ""
	if raceBuild {
		race = " (race-instrumented builds)"
	}
	for _, fn := range fns {
		var inits []float64
		for _, r := range colds[fn] {
			inits = append(inits, ms(r.RuntimeInit))
		}
		sort.Float64s(inits)
		fmt.Printf("runtime init %-12s n=%-2d min %.1f ms  median %.1f ms  max %.1f ms%s\n",
			fn, len(inits), inits[0], inits[len(inits)/2], inits[len(inits)-1], race)
	}
}

// eventFiles lists the event files: every *.json directly in events/.
func eventFiles(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no events in %s/events: %v", root, err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}
