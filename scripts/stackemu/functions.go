package stackemu

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/scripts/rie"
)

// FunctionDef is a template function: which functions/<Name> it runs and
// the configuration Lambda would give it.
type FunctionDef struct {
	Logical string
	Name    string            // stream, embed, orchestrate
	Env     map[string]string // Environment.Variables, references resolved
	Timeout time.Duration
	Memory  int
}

// Function reads function logical (matched by its construct id: the
// logical ID less CDK's 8-digit hash, lowercased) and resolves its
// environment against the created resources. A variable that refers to a
// resource the emulation did not create is an error, not an empty value.
func (s *Stack) Function(name string) (*FunctionDef, error) {
	for _, id := range s.Template.OfType("AWS::Lambda::Function") {
		if constructName(id) != name {
			continue
		}
		p := s.Template.Resources[id].Properties
		fd := &FunctionDef{Logical: id, Name: name, Env: map[string]string{}, Timeout: 3 * time.Second, Memory: 128}
		if v, ok := p["Timeout"].(float64); ok {
			fd.Timeout = time.Duration(v) * time.Second
		}
		if v, ok := p["MemorySize"].(float64); ok {
			fd.Memory = int(v)
		}
		env, _ := p["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			str, err := s.String(v)
			if err != nil {
				return nil, fmt.Errorf("%s environment %s: %w", id, k, err)
			}
			fd.Env[k] = str
		}
		return fd, nil
	}
	return nil, fmt.Errorf("no function %q in the template", name)
}

// constructName: "Stream790BDEE4" → "stream".
func constructName(logical string) string {
	if n := len(logical) - 8; n > 0 && strings.Trim(logical[n:], "0123456789ABCDEF") == "" {
		logical = logical[:n]
	}
	return strings.ToLower(logical)
}

// EnvList is the function's environment for the runtime emulator: its
// template variables, the Lambda configuration variables, and what the
// caller adds (credentials and AWS_ENDPOINT_URL for the emulator).
func (fd *FunctionDef) EnvList(extra ...string) []string {
	keys := make([]string, 0, len(fd.Env))
	for k := range fd.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, k+"="+fd.Env[k])
	}
	env = append(env, "AWS_LAMBDA_FUNCTION_NAME="+fd.Logical, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fd.Memory))
	return rie.MinimalEnv(append(env, extra...)...)
}

// Mapping is an SQS event source mapping as the template declares it.
type Mapping struct {
	Logical                 string
	Function                string // functions/<Function>
	Queue                   string // the queue's logical ID
	QueueURL, QueueARN      string
	BatchSize               int
	Window                  time.Duration
	ReportBatchItemFailures bool
	MaxConcurrency          int // 0: unbounded
}

// Mappings lists the template's SQS event source mappings.
func (s *Stack) Mappings() ([]Mapping, error) {
	var out []Mapping
	for _, id := range s.Template.OfType("AWS::Lambda::EventSourceMapping") {
		p := s.Template.Resources[id].Properties
		if enabled, ok := p["Enabled"].(bool); ok && !enabled {
			continue
		}
		queues := Refs(p["EventSourceArn"])
		fns := Refs(p["FunctionName"])
		if len(queues) != 1 || len(fns) != 1 {
			return nil, fmt.Errorf("%s: event source %v / function %v", id, p["EventSourceArn"], p["FunctionName"])
		}
		q, ok := s.Physical[queues[0]]
		if !ok {
			return nil, fmt.Errorf("%s reads %s, which is not an emulated queue", id, queues[0])
		}
		m := Mapping{Logical: id, Function: constructName(fns[0]), Queue: queues[0], QueueURL: q.Ref, QueueARN: q.Attrs["Arn"], BatchSize: 10}
		if v, ok := p["BatchSize"].(float64); ok {
			m.BatchSize = int(v)
		}
		if v, ok := p["MaximumBatchingWindowInSeconds"].(float64); ok {
			m.Window = time.Duration(v) * time.Second
		}
		types, _ := p["FunctionResponseTypes"].([]any)
		m.ReportBatchItemFailures = slices.Contains(types, any("ReportBatchItemFailures"))
		if sc, ok := p["ScalingConfig"].(map[string]any); ok {
			if v, ok := sc["MaximumConcurrency"].(float64); ok {
				m.MaxConcurrency = int(v)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// StartFunction runs fd's bootstrap under the runtime emulator with fd's
// configuration; extra adds to its environment.
func StartFunction(ctx context.Context, emulator, bootstrap string, fd *FunctionDef, extra ...string) (*rie.Instance, error) {
	return rie.Start(ctx, rie.Options{RIE: emulator, Bootstrap: bootstrap, Env: fd.EnvList(extra...), Timeout: fd.Timeout})
}
