package quota_test

import (
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/quota"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func byName(t *testing.T, l quota.Limits, loc *time.Location, now time.Time, name string) quota.Window {
	t.Helper()
	for _, w := range quota.Windows(l, loc, now) {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no %s window", name)
	return quota.Window{}
}

func checkWindow(t *testing.T, w quota.Window, id, start, end string, hours float64) {
	t.Helper()
	if w.ID != id || !w.Start.Equal(utc(start)) || !w.End.Equal(utc(end)) {
		t.Errorf("%s window = %s [%s, %s), want %s [%s, %s)", w.Name, w.ID, w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339), id, start, end)
	}
	if hours > 0 && w.End.Sub(w.Start).Hours() != hours {
		t.Errorf("%s lasts %v, want %vh", w.ID, w.End.Sub(w.Start), hours)
	}
}

var days = quota.Limits{TokensPerDay: 1, CostPerDayMicros: 1, TokensPerMonth: 1, CostPerMonthMicros: 1}

func TestWindowsSelectionAndOrder(t *testing.T) {
	now := utc("2026-05-10T12:34:56Z")
	all := quota.Limits{RequestsPerMinute: 1, TokensPerMinute: 2, TokensPerDay: 3, TokensPerMonth: 4, CostPerDayMicros: 5, CostPerMonthMicros: 6}
	ws := quota.Windows(all, nil, now)
	want := []struct{ name, metric, id string }{
		{"rpm", "requests", "rpm:2026-05-10T12:34Z"}, {"tpm", "tokens", "tpm:2026-05-10T12:34Z"},
		{"tpd", "tokens", "tpd:2026-05-10"}, {"tpmo", "tokens", "tpmo:2026-05"},
		{"cpd", "cost", "cpd:2026-05-10"}, {"cpmo", "cost", "cpmo:2026-05"},
	}
	if len(ws) != len(want) {
		t.Fatalf("%d windows", len(ws))
	}
	for i, w := range ws {
		if w.Name != want[i].name || w.Metric != want[i].metric || w.ID != want[i].id || w.Limit != int64(i+1) {
			t.Errorf("window %d = %+v, want %+v", i, w, want[i])
		}
		if w.Start.Location() != time.UTC || w.Start.After(now) || !w.End.After(now) {
			t.Errorf("%s: [%v, %v) in %v does not hold %v", w.Name, w.Start, w.End, w.Start.Location(), now)
		}
	}
	if ws := quota.Windows(quota.Limits{}, nil, now); len(ws) != 0 {
		t.Errorf("no limits: %+v", ws)
	}
	if ws := quota.Windows(quota.Limits{TokensPerDay: 5, RequestsPerMinute: -1}, nil, now); len(ws) != 1 || ws[0].Name != "tpd" {
		t.Errorf("only tpd wanted: %+v", ws)
	}
	if a, b := quota.Windows(all, nil, now), quota.Windows(all, time.UTC, now); !sameWindows(a, b) {
		t.Error("nil location is not UTC")
	}
}

func sameWindows(a, b []quota.Window) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !a[i].Start.Equal(b[i].Start) || !a[i].End.Equal(b[i].End) {
			return false
		}
	}
	return true
}

func TestWindowsTokyo(t *testing.T) {
	tokyo := mustLoad(t, "Asia/Tokyo")
	// 15:30Z is 00:30 the next day in Tokyo.
	now := utc("2026-11-23T15:30:00Z")
	checkWindow(t, byName(t, days, tokyo, now, "tpd"), "tpd:2026-11-24", "2026-11-23T15:00:00Z", "2026-11-24T15:00:00Z", 24)
	checkWindow(t, byName(t, days, tokyo, now, "cpd"), "cpd:2026-11-24", "2026-11-23T15:00:00Z", "2026-11-24T15:00:00Z", 24)
	checkWindow(t, byName(t, days, tokyo, now.Add(-time.Hour), "tpd"), "tpd:2026-11-23", "2026-11-22T15:00:00Z", "2026-11-23T15:00:00Z", 24)
	if w := byName(t, days, tokyo, now, "tpd"); w.Start.Location() != tokyo || w.End.Format(time.RFC3339) != "2026-11-25T00:00:00+09:00" {
		t.Errorf("end not in tenant time: %v", w.End)
	}
	checkWindow(t, byName(t, days, tokyo, now, "tpmo"), "tpmo:2026-11", "2026-10-31T15:00:00Z", "2026-11-30T15:00:00Z", 0)
	// Month boundaries are local: 30 Nov 15:00Z is 1 Dec in Tokyo.
	checkWindow(t, byName(t, days, tokyo, utc("2026-11-30T14:59:59Z"), "cpmo"), "cpmo:2026-11", "2026-10-31T15:00:00Z", "2026-11-30T15:00:00Z", 0)
	checkWindow(t, byName(t, days, tokyo, utc("2026-11-30T15:00:00Z"), "cpmo"), "cpmo:2026-12", "2026-11-30T15:00:00Z", "2026-12-31T15:00:00Z", 0)
	// And across the year.
	checkWindow(t, byName(t, days, tokyo, utc("2026-12-31T15:00:00Z"), "tpmo"), "tpmo:2027-01", "2026-12-31T15:00:00Z", "2027-01-31T15:00:00Z", 0)
	checkWindow(t, byName(t, days, tokyo, utc("2026-12-31T15:00:00Z"), "tpd"), "tpd:2027-01-01", "2026-12-31T15:00:00Z", "2027-01-01T15:00:00Z", 24)
}

func TestWindowsLosAngelesDST(t *testing.T) {
	la := mustLoad(t, "America/Los_Angeles")
	// 2026-03-08: clocks spring forward at 02:00 PST; the day has 23 hours.
	for _, now := range []string{"2026-03-08T08:00:00Z", "2026-03-08T09:59:59Z", "2026-03-08T10:00:00Z", "2026-03-09T06:59:59Z"} {
		checkWindow(t, byName(t, days, la, utc(now), "tpd"), "tpd:2026-03-08", "2026-03-08T08:00:00Z", "2026-03-09T07:00:00Z", 23)
	}
	checkWindow(t, byName(t, days, la, utc("2026-03-09T07:00:00Z"), "tpd"), "tpd:2026-03-09", "2026-03-09T07:00:00Z", "2026-03-10T07:00:00Z", 24)
	checkWindow(t, byName(t, days, la, utc("2026-03-08T07:59:59Z"), "tpd"), "tpd:2026-03-07", "2026-03-07T08:00:00Z", "2026-03-08T08:00:00Z", 24)
	// 2026-11-01: clocks fall back at 02:00 PDT; the day has 25 hours.
	for _, now := range []string{"2026-11-01T07:00:00Z", "2026-11-01T08:30:00Z", "2026-11-01T09:30:00Z", "2026-11-02T07:59:59Z"} {
		checkWindow(t, byName(t, days, la, utc(now), "cpd"), "cpd:2026-11-01", "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z", 25)
	}
	// 01:30 happens twice that night; the two minutes are distinct windows.
	rpm := quota.Limits{RequestsPerMinute: 1}
	a, b := byName(t, rpm, la, utc("2026-11-01T08:30:00Z"), "rpm"), byName(t, rpm, la, utc("2026-11-01T09:30:00Z"), "rpm")
	if a.Start.Format("15:04") != "01:30" || b.Start.Format("15:04") != "01:30" || a.ID == b.ID {
		t.Errorf("repeated local minute: %s %v, %s %v", a.ID, a.Start, b.ID, b.Start)
	}
	// Months in local time, PST on one side and PDT on the other.
	checkWindow(t, byName(t, days, la, utc("2026-03-01T07:59:59Z"), "tpmo"), "tpmo:2026-02", "2026-02-01T08:00:00Z", "2026-03-01T08:00:00Z", 0)
	checkWindow(t, byName(t, days, la, utc("2026-03-01T08:00:00Z"), "tpmo"), "tpmo:2026-03", "2026-03-01T08:00:00Z", "2026-04-01T07:00:00Z", 0)
	checkWindow(t, byName(t, days, la, utc("2026-11-15T00:00:00Z"), "cpmo"), "cpmo:2026-11", "2026-11-01T07:00:00Z", "2026-12-01T08:00:00Z", 0)
}

func TestWindowsMidnightGap(t *testing.T) {
	// America/Santiago springs forward at midnight: 2026-09-06 00:00 does not
	// exist, and the day begins at 01:00 -03, 04:00Z.
	scl := mustLoad(t, "America/Santiago")
	checkWindow(t, byName(t, days, scl, utc("2026-09-06T12:00:00Z"), "tpd"), "tpd:2026-09-06", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z", 23)
	checkWindow(t, byName(t, days, scl, utc("2026-09-06T03:59:59Z"), "tpd"), "tpd:2026-09-05", "2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", 24)
}

func TestMinuteWindowsAreZoneFree(t *testing.T) {
	l := quota.Limits{RequestsPerMinute: 1, TokensPerMinute: 1}
	now := utc("2026-03-08T10:15:42.5Z")
	want := quota.Windows(l, time.UTC, now)
	checkWindow(t, want[0], "rpm:2026-03-08T10:15Z", "2026-03-08T10:15:00Z", "2026-03-08T10:16:00Z", 0)
	for _, z := range []string{"Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Eucla", "Pacific/Chatham"} {
		if got := quota.Windows(l, mustLoad(t, z), now); !sameWindows(got, want) {
			t.Errorf("%s: %+v, want %+v", z, got, want)
		}
	}
}

// Every instant lies in its windows, consecutive windows meet, and IDs name
// the local date.
func TestWindowsTileTime(t *testing.T) {
	all := quota.Limits{RequestsPerMinute: 1, TokensPerDay: 1, TokensPerMonth: 1}
	for _, z := range []string{"UTC", "Asia/Tokyo", "America/Los_Angeles", "America/Santiago", "America/Havana", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia"} {
		loc := mustLoad(t, z)
		for now := utc("2025-12-25T00:00:00Z"); now.Before(utc("2027-01-05T00:00:00Z")); now = now.Add(97 * time.Minute) {
			for _, w := range quota.Windows(all, loc, now) {
				if now.Before(w.Start) || !now.Before(w.End) {
					t.Fatalf("%s %v: %s [%v, %v) does not hold it", z, now, w.ID, w.Start, w.End)
				}
				local := now.In(loc)
				switch w.Name {
				case "tpd":
					if w.ID != "tpd:"+local.Format("2006-01-02") {
						t.Fatalf("%s %v: %s", z, local, w.ID)
					}
				case "tpmo":
					if w.ID != "tpmo:"+local.Format("2006-01") {
						t.Fatalf("%s %v: %s", z, local, w.ID)
					}
				}
				next := byName(t, all, loc, w.End, w.Name)
				if !next.Start.Equal(w.End) || next.ID == w.ID {
					t.Fatalf("%s: %s ends %v but %s starts %v", z, w.ID, w.End, next.ID, next.Start)
				}
				if d := w.End.Sub(w.Start); w.Name == "tpd" && (d < 22*time.Hour || d > 26*time.Hour) {
					t.Fatalf("%s: day %s lasts %v", z, w.ID, d)
				}
			}
		}
	}
}
