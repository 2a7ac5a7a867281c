// Package quota meters tenants: requests and tokens per minute, tokens and
// cost per day and per month, in windows that follow the tenant's own time
// zone. Usage is reserved before a call and settled after it.
package quota

// Limits are a tenant's quotas; zero means unlimited.
type Limits struct {
	RequestsPerMinute int64 `json:"requests_per_minute,omitempty" yaml:"requests_per_minute"`
	TokensPerMinute   int64 `json:"tokens_per_minute,omitempty" yaml:"tokens_per_minute"`
	TokensPerDay      int64 `json:"tokens_per_day,omitempty" yaml:"tokens_per_day"`
	TokensPerMonth    int64 `json:"tokens_per_month,omitempty" yaml:"tokens_per_month"`
	// Cost budgets are in micro-dollars (1e-6 USD) so counters stay integers.
	CostPerDayMicros   int64 `json:"cost_per_day_micros,omitempty" yaml:"cost_per_day_micros"`
	CostPerMonthMicros int64 `json:"cost_per_month_micros,omitempty" yaml:"cost_per_month_micros"`
}

// Unlimited reports whether no limit is set.
func (l Limits) Unlimited() bool { return l == Limits{} }
