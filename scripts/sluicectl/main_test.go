package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/tenant"
)

func TestOperatorWorkflow(t *testing.T) {
	c, table := ddbtest.Table(t)
	_ = c
	ctx := context.Background()
	env := func(k string) string {
		if k == "SLUICE_TABLE" {
			return table
		}
		return ""
	}
	sh := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, args, &out, env); err != nil {
			t.Fatalf("sluicectl %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	sh("init")
	sh("tenant", "create", "acme", "-name", "Acme Corp", "-tz", "Asia/Tokyo", "-rpm", "60", "-tpd", "100000", "-cost-month", "25")
	out := sh("key", "create", "acme")
	key := strings.SplitN(out, "\n", 2)[0]
	if !strings.HasPrefix(key, "sk-") {
		t.Fatalf("key create printed %q", out)
	}
	// The key resolves to the tenant through the same store the gateway uses.
	auth := tenant.NewAuthenticator(tenant.NewDynamo(c, table), -1)
	got, err := auth.Authenticate(ctx, "Bearer "+key)
	if err != nil || got.ID != "acme" || got.TimeZone != "Asia/Tokyo" || got.Limits.TokensPerDay != 100000 || got.Limits.CostPerMonthMicros != 25_000_000 {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if out := sh("tenant", "show", "acme"); !strings.Contains(out, "Asia/Tokyo") || !strings.Contains(out, "100000") || !strings.Contains(out, "$25.0000") {
		t.Errorf("tenant show:\n%s", out)
	}
	sh("tenant", "set-quota", "acme", "-tpd", "5000")
	if out := sh("usage", "acme"); !strings.Contains(out, "5000") || !strings.Contains(out, "60") {
		t.Errorf("usage after set-quota keeps other limits:\n%s", out)
	}
	if out := sh("tenant", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "enabled") {
		t.Errorf("tenant list:\n%s", out)
	}
	hash := tenant.HashKey(key)
	if out := sh("key", "list", "acme"); !strings.Contains(out, hash) {
		t.Errorf("key list:\n%s", out)
	}
	sh("key", "disable", hash)
	auth = tenant.NewAuthenticator(tenant.NewDynamo(c, table), -1)
	if _, err := auth.Authenticate(ctx, "Bearer "+key); !errors.Is(err, tenant.ErrDisabledKey) {
		t.Errorf("disabled key: %v", err)
	}
	sh("tenant", "disable", "acme")
	sh("breaker", "open", "openai/gpt-4o-mini")
	if out := sh("breaker", "list"); !strings.Contains(out, "openai/gpt-4o-mini") || !strings.Contains(out, "open") {
		t.Errorf("breaker list:\n%s", out)
	}
	sh("breaker", "close", "openai/gpt-4o-mini")
	if out := sh("breaker", "list"); !strings.Contains(out, "closed") {
		t.Errorf("breaker list after close:\n%s", out)
	}
	var buf bytes.Buffer
	if err := run(ctx, []string{"tenant", "create", "bad", "-tz", "Mars/Olympus"}, &buf, env); err == nil || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Errorf("bad zone: %v", err)
	}
	if err := run(ctx, []string{"frobnicate"}, &buf, env); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: %v", err)
	}
}
