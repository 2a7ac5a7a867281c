// Package rie runs a function's real bootstrap under AWS's Lambda Runtime
// Interface Emulator (RIE), the Go program that speaks Lambda's runtime API,
// and reads back what Lambda would have: the response payload, whether the
// runtime reported an invocation error, and the REPORT line.
//
// It serves `make invoke`, the runtime tests (scripts/runtimetest) and the
// stack-on-emulator tests (scripts/stackemu).
package rie

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module and Version pin the emulator. The version is the pseudo-version the
// Go module proxy serves for the upstream commit we tested against; bump both
// together with the parsing in result.go if its log format changes.
const (
	Module  = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	Version = "v0.0.0-20261030222936-bef5c4ba774d"
)

// Root returns the repository root: the nearest directory above the working
// directory that holds go.mod and functions/.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isDir(filepath.Join(dir, "functions")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no sluice repository (go.mod and functions/) above the working directory")
		}
		dir = parent
	}
}

// Install returns the path of the pinned emulator, building it into
// <root>/.cache/rie-<version>/ with `go install` the first time. $SLUICE_RIE
// names a binary to use instead. Concurrent callers (parallel test packages)
// are safe: each builds into its own directory and renames into place, and a
// rename over an identical binary is harmless.
func Install(ctx context.Context, root string) (string, error) {
	if p := os.Getenv("SLUICE_RIE"); p != "" {
		if !isFile(p) {
			return "", fmt.Errorf("SLUICE_RIE=%s: no such file", p)
		}
		return p, nil
	}
	dir := filepath.Join(root, ".cache", "rie-"+Version)
	bin := filepath.Join(dir, "aws-lambda-rie")
	if isFile(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install rie: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("install rie: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", Module+"@"+Version)
	// GOFLAGS=-mod=mod: `go install pkg@version` ignores the workspace's
	// go.mod, but an inherited -mod=vendor would refuse it.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", Module, Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), bin); err != nil {
		return "", fmt.Errorf("install rie: %w", err)
	}
	return bin, nil
}

// BuildOptions configure Build.
type BuildOptions struct {
	Race bool // build with the race detector, so data races in the handler fail the run
}

// Build compiles functions/<fn> for the host as a Lambda bootstrap (the
// lambda.norpc tag, as `make build` does for the zips) into dir/<fn>/bootstrap.
func Build(ctx context.Context, root, fn, dir string, o BuildOptions) (string, error) {
	if !isDir(filepath.Join(root, "functions", fn)) {
		return "", fmt.Errorf("no function %q in %s/functions", fn, root)
	}
	out := filepath.Join(dir, fn, "bootstrap")
	args := []string{"build", "-tags", "lambda.norpc", "-o", out}
	if o.Race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./functions/"+fn)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", fn, err, out)
	}
	return out, nil
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }
func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }

// Functions are the three function names, in their directory order.
var Functions = []string{"embed", "orchestrate", "stream"}

// ValidFunction reports whether fn names a function.
func ValidFunction(fn string) bool {
	for _, f := range Functions {
		if f == fn {
			return true
		}
	}
	return false
}

// FunctionList is Functions joined for messages.
func FunctionList() string { return strings.Join(Functions, "|") }
