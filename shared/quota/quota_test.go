package quota_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/quota"
)

func exceededAt(t *testing.T, l quota.Limits, loc *time.Location, now time.Time, name string, used int64) *quota.ExceededError {
	t.Helper()
	m := quota.NewMemory()
	ctx := t.Context()
	w := byName(t, l, loc, now, name)
	if used > 0 {
		if _, err := m.Reserve(ctx, "t", l, loc, amountOf(w, used), now); err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.Reserve(ctx, "t", l, loc, amountOf(w, w.Limit-used+1), now)
	var ex *quota.ExceededError
	if !errors.As(err, &ex) {
		t.Fatalf("not refused: %v", err)
	}
	return ex
}

func amountOf(w quota.Window, v int64) quota.Amounts {
	switch w.Metric {
	case quota.MetricRequests:
		return quota.Amounts{Requests: v}
	case quota.MetricTokens:
		return quota.Amounts{Tokens: v}
	}
	return quota.Amounts{CostMicros: v}
}

func TestExceededError(t *testing.T) {
	tokyo := mustLoad(t, "Asia/Tokyo")
	now := utc("2026-11-23T10:00:00Z")
	ex := exceededAt(t, quota.Limits{TokensPerDay: 100_000}, tokyo, now, "tpd", 99_990)
	if got, want := ex.Error(), "tokens per day quota exceeded (limit 100000, used 99990); resets at 2026-11-24T00:00:00+09:00"; got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
	if ex.Requested != 11 || ex.Limit != 100_000 || ex.Used != 99_990 {
		t.Errorf("%+v", ex)
	}
	if got := ex.RetryAfter(now); got != 5*time.Hour {
		t.Errorf("RetryAfter = %v, want 5h", got)
	}
	if got := ex.RetryAfter(ex.ResetAt.Add(time.Hour)); got != time.Second {
		t.Errorf("RetryAfter past the reset = %v, want 1s", got)
	}
	wrapped := fmt.Errorf("gateway: %w", ex)
	var again *quota.ExceededError
	if !errors.As(wrapped, &again) || again != ex {
		t.Error("errors.As through wrapping")
	}

	ex = exceededAt(t, quota.Limits{CostPerMonthMicros: 5_000_000}, nil, now, "cpmo", 4_990_000)
	if got, want := ex.Error(), "cost per month quota exceeded (limit $5, used $4.99); resets at 2026-12-01T00:00:00Z"; got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
	ex = exceededAt(t, quota.Limits{RequestsPerMinute: 60}, nil, now, "rpm", 60)
	if got, want := ex.Error(), "requests per minute quota exceeded (limit 60, used 60); resets at 2026-11-23T10:01:00Z"; got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
}

func TestDescribe(t *testing.T) {
	all := quota.Limits{RequestsPerMinute: 1, TokensPerMinute: 1, TokensPerDay: 1, TokensPerMonth: 1, CostPerDayMicros: 1, CostPerMonthMicros: 1}
	want := []string{"requests per minute", "tokens per minute", "tokens per day", "tokens per month", "cost per day", "cost per month"}
	for i, w := range quota.Windows(all, nil, time.Now()) {
		if w.Describe() != want[i] {
			t.Errorf("%s: %q", w.Name, w.Describe())
		}
	}
}
