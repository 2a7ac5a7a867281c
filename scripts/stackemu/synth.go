package stackemu

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Synth synthesizes the CDK app in <root>/infra into dir and returns the
// path of the Sluice stack's template. It runs the app as `cdk synth`
// would (CDK_OUTDIR, CDK_CONTEXT_JSON), with placeholder zips: the
// template does not depend on their content, and the emulation runs
// bootstraps built for the host instead.
func Synth(ctx context.Context, root, dir string) (string, error) {
	dist := filepath.Join(dir, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return "", fmt.Errorf("synth: %w", err)
	}
	for _, fn := range []string{"stream", "embed", "orchestrate"} {
		if err := placeholderZip(filepath.Join(dist, fn+".zip")); err != nil {
			return "", err
		}
	}
	cdkCtx, _ := json.Marshal(map[string]string{"distDir": dist})
	out := filepath.Join(dir, "cdk.out")
	cmd := exec.CommandContext(ctx, "go", "run", ".")
	cmd.Dir = filepath.Join(root, "infra")
	cmd.Env = append(os.Environ(), "CDK_OUTDIR="+out, "CDK_CONTEXT_JSON="+string(cdkCtx), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("synthesize infra: %w\n%s", err, b)
	}
	tpl := filepath.Join(out, "Sluice.template.json")
	if _, err := os.Stat(tpl); err != nil {
		return "", fmt.Errorf("synthesize infra: %w", err)
	}
	return tpl, nil
}

func placeholderZip(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("placeholder zip: %w", err)
	}
	zw := zip.NewWriter(f)
	w, err := zw.Create("bootstrap")
	if err == nil {
		_, err = w.Write([]byte("#!/bin/sh\nexit 1\n"))
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("placeholder zip: %w", err)
	}
	return nil
}
