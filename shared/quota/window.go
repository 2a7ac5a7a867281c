package quota

import (
	"time"
)

// Metrics a window counts.
const (
	MetricRequests = "requests"
	MetricTokens   = "tokens"
	MetricCost     = "cost" // micro-dollars
)

// Window is one quota period of one metric, with its limit. Windows are
// half-open: [Start, End).
type Window struct {
	Name   string // "rpm", "tpm", "tpd", "tpmo", "cpd", "cpmo"
	Metric string // MetricRequests, MetricTokens or MetricCost
	Limit  int64
	// Start and End are in the tenant's location. End is when the window
	// resets.
	Start, End time.Time
	// ID names the window in storage keys, stable for its whole duration:
	// "tpd:2026-03-08" and "cpmo:2026-03" in the tenant's local calendar;
	// minute windows use the UTC minute, "rpm:2026-03-08T09:15Z", because a
	// local minute repeats when clocks go back.
	ID string
}

// Amount is the part of a that this window counts.
func (w Window) Amount(a Amounts) int64 {
	switch w.Metric {
	case MetricRequests:
		return a.Requests
	case MetricTokens:
		return a.Tokens
	default:
		return a.CostMicros
	}
}

// Describe names the window for people: "tokens per day".
func (w Window) Describe() string {
	switch w.Name {
	case "rpm":
		return "requests per minute"
	case "tpm":
		return "tokens per minute"
	case "tpd":
		return "tokens per day"
	case "tpmo":
		return "tokens per month"
	case "cpd":
		return "cost per day"
	case "cpmo":
		return "cost per month"
	}
	return w.Name
}

// Windows returns the windows of l that contain now, in a fixed order (rpm,
// tpm, tpd, tpmo, cpd, cpmo), leaving out those without a limit (zero or,
// being meaningless, negative). Day and month windows follow the tenant's
// calendar in loc (nil means UTC): a day runs from local midnight to the
// next, so it is 23 or 25 hours long when clocks change, and a month from
// the first local midnight of the month to that of the next. Minute windows
// are the same instant everywhere.
func Windows(l Limits, loc *time.Location, now time.Time) []Window {
	if l.Unlimited() {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	ws := make([]Window, 0, 6)
	var minStart, minEnd, dayStart, dayEnd, monStart, monEnd time.Time
	var minID, dayID, monID string
	if l.RequestsPerMinute > 0 || l.TokensPerMinute > 0 {
		minStart = now.Truncate(time.Minute) // Truncate works on absolute time
		minEnd = minStart.Add(time.Minute)
		minID = minStart.UTC().Format("2006-01-02T15:04Z")
	}
	if l.TokensPerDay > 0 || l.CostPerDayMicros > 0 {
		y, m, d := now.Date()
		dayStart, dayEnd = dayBegins(y, m, d, loc), dayBegins(y, m, d+1, loc)
		dayID = dayStart.Format("2006-01-02")
	}
	if l.TokensPerMonth > 0 || l.CostPerMonthMicros > 0 {
		y, m, _ := now.Date()
		monStart, monEnd = dayBegins(y, m, 1, loc), dayBegins(y, m+1, 1, loc)
		monID = monStart.Format("2006-01")
	}
	add := func(name, metric string, limit int64, start, end time.Time, id string) {
		if limit > 0 {
			ws = append(ws, Window{Name: name, Metric: metric, Limit: limit, Start: start, End: end, ID: name + ":" + id})
		}
	}
	add("rpm", MetricRequests, l.RequestsPerMinute, minStart, minEnd, minID)
	add("tpm", MetricTokens, l.TokensPerMinute, minStart, minEnd, minID)
	add("tpd", MetricTokens, l.TokensPerDay, dayStart, dayEnd, dayID)
	add("tpmo", MetricTokens, l.TokensPerMonth, monStart, monEnd, monID)
	add("cpd", MetricCost, l.CostPerDayMicros, dayStart, dayEnd, dayID)
	add("cpmo", MetricCost, l.CostPerMonthMicros, monStart, monEnd, monID)
	return ws
}

// dayBegins returns the first instant of local date y-m-d (normalized, so
// d+1 and m+1 may overflow) in loc. That is local midnight, except where
// clocks spring forward at midnight (America/Santiago, America/Havana, ...):
// midnight does not exist there and the day begins at the transition.
func dayBegins(y int, m time.Month, d int, loc *time.Location) time.Time {
	y, m, d = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Date() // normalized
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	// time.Date may resolve a missing midnight with the earlier offset, which
	// lands in the previous day; the day then begins where that offset ends.
	for range 2 {
		if ty, tm, td := t.Date(); ty == y && tm == m && td == d {
			break
		}
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.After(t) {
			break
		}
		t = end
	}
	return t
}
