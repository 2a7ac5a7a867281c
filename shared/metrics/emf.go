package metrics

import (
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultNamespace is the CloudWatch namespace used when none is given.
const DefaultNamespace = "sluice"

// maxValueLen caps string values: CloudWatch rejects dimension values over
// 1024 characters, and a runaway value must not bloat every log line.
const maxValueLen = 1024

// metricDefs lists the metrics in the order they are declared and written.
var metricDefs = [...]struct{ name, unit string }{
	{"Requests", "Count"},
	{"Attempts", "Count"},
	{"UpstreamCalls", "Count"},
	{"Retries", "Count"},
	{"Fallbacks", "Count"},
	{"Hedges", "Count"},
	{"Stitched", "Count"},
	{"MidStreamErrors", "Count"},
	{"Errors", "Count"},
	{"BreakerOpen", "Count"},
	{"QuotaRejections", "Count"},
	{"TTFB", "Milliseconds"},
	{"TTFT", "Milliseconds"},
	{"Duration", "Milliseconds"},
	{"PromptTokens", "Count"},
	{"CompletionTokens", "Count"},
	{"CostUSD", "None"},
	// Route features: on the lines of routes that use any.
	{"CacheHits", "Count"},
	{"Blocked", "Count"},
	{"Redactions", "Count"},
	{"ShadowMatches", "Count"},
}

// featureMetric reports whether a metric is one of the route features'.
func featureMetric(name string) bool {
	switch name {
	case "CacheHits", "Blocked", "Redactions", "ShadowMatches":
		return true
	}
	return false
}

// Bits selecting which optional metrics a line carries.
const (
	hasTTFB = 1 << iota
	hasTTFT
	hasFeatures
)

// EMF writes one CloudWatch Embedded Metric Format JSON line per request to
// w (stdout on Lambda, where CloudWatch Logs extracts the metrics).
//
// Dimensions are [Route] and [Route, Provider]; empty values become "none"
// because CloudWatch rejects empty dimension values. Model, Tenant, Status,
// Stream and ErrorKind are written as plain properties, searchable in Logs
// Insights without creating per-tenant or per-model metrics (cost). Route
// must therefore come from configuration, not from arbitrary client input.
//
// TTFB and TTFT are left out of a line, both as values and from its metric
// declarations, when zero: a request that produced no token has no time to
// first token, and the spec requires every declared metric to be present.
type EMF struct {
	now func() time.Time
	// directives[hasTTFB|hasTTFT|hasFeatures] is the _aws block after the
	// timestamp.
	directives [8][]byte
	writeErrs  atomic.Uint64

	mu  sync.Mutex // serialises w and guards buf
	w   io.Writer
	buf []byte
}

// EMFOption configures an EMF.
type EMFOption func(*EMF)

// WithClock sets the clock for the _aws.Timestamp field. nil keeps time.Now.
func WithClock(now func() time.Time) EMFOption {
	return func(e *EMF) {
		if now != nil {
			e.now = now
		}
	}
}

// NewEMF returns an EMF writing to w under namespace ("" = "sluice").
func NewEMF(w io.Writer, namespace string, opts ...EMFOption) *EMF {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if w == nil {
		w = io.Discard
	}
	e := &EMF{now: time.Now, w: w, buf: make([]byte, 0, 2048)}
	for _, o := range opts {
		o(e)
	}
	for mask := range e.directives {
		e.directives[mask] = appendDirective(nil, namespace, mask)
	}
	return e
}

func appendDirective(b []byte, namespace string, mask int) []byte {
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
	b = appendString(b, namespace)
	b = append(b, `,"Dimensions":[["Route"],["Route","Provider"]],"Metrics":[`...)
	first := true
	for _, m := range metricDefs {
		if (m.name == "TTFB" && mask&hasTTFB == 0) || (m.name == "TTFT" && mask&hasTTFT == 0) ||
			(featureMetric(m.name) && mask&hasFeatures == 0) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"Name":"`...)
		b = append(b, m.name...)
		b = append(b, `","Unit":"`...)
		b = append(b, m.unit...)
		b = append(b, `"}`...)
	}
	return append(b, "]}]}"...)
}

// Record writes r as one line with a single Write call, so concurrent
// records never interleave. Write errors are counted (WriteErrors), not
// returned: metrics must never fail a request. A nil r is ignored.
func (e *EMF) Record(r *Request) {
	if r == nil {
		return
	}
	ts := e.now().UnixMilli()
	mask := 0
	if r.TTFB > 0 {
		mask |= hasTTFB
	}
	if r.TTFT > 0 {
		mask |= hasTTFT
	}
	if r.Features {
		mask |= hasFeatures
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.buf[:0]
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, e.directives[mask]...)
	b = appendKey(b, "Route")
	b = appendString(b, orNone(r.Route))
	b = appendKey(b, "Provider")
	b = appendString(b, orNone(r.Provider))

	b = appendInt(b, "Requests", int64(r.Requests))
	b = appendInt(b, "Attempts", int64(r.Attempts))
	b = appendInt(b, "UpstreamCalls", int64(r.UpstreamCalls))
	b = appendInt(b, "Retries", int64(r.Retries))
	b = appendInt(b, "Fallbacks", int64(r.Fallbacks))
	b = appendInt(b, "Hedges", int64(r.Hedges))
	b = appendInt(b, "Stitched", b2i(r.Stitched))
	b = appendInt(b, "MidStreamErrors", b2i(r.MidStreamError))
	b = appendInt(b, "Errors", b2i(r.failed()))
	b = appendInt(b, "BreakerOpen", int64(r.BreakerOpen))
	b = appendInt(b, "QuotaRejections", b2i(r.QuotaRejected))
	if mask&hasTTFB != 0 {
		b = appendMillis(b, "TTFB", r.TTFB)
	}
	if mask&hasTTFT != 0 {
		b = appendMillis(b, "TTFT", r.TTFT)
	}
	b = appendMillis(b, "Duration", max(r.Duration, 0))
	b = appendInt(b, "PromptTokens", int64(r.PromptTokens))
	b = appendInt(b, "CompletionTokens", int64(r.CompletionTokens))
	b = appendFloat(b, "CostUSD", r.CostUSD)
	if mask&hasFeatures != 0 {
		b = appendInt(b, "CacheHits", b2i(r.Cache == "hit"))
		b = appendInt(b, "Blocked", b2i(r.Blocked != ""))
		b = appendInt(b, "Redactions", int64(r.Redactions))
		b = appendInt(b, "ShadowMatches", b2i(r.ShadowMatch))
		b = appendKey(b, "Cache")
		b = appendString(b, r.Cache)
		b = appendKey(b, "Arm")
		b = appendString(b, r.Arm)
		b = appendKey(b, "GuardBlocked")
		b = appendString(b, r.Blocked)
		b = appendKey(b, "Shadow")
		b = strconv.AppendBool(b, r.Shadow)
	}

	b = appendKey(b, "Model")
	b = appendString(b, r.Model)
	b = appendKey(b, "Tenant")
	b = appendString(b, r.Tenant)
	b = appendInt(b, "Status", int64(r.Status))
	b = appendKey(b, "Stream")
	b = strconv.AppendBool(b, r.Stream)
	b = appendKey(b, "ErrorKind")
	b = appendString(b, r.ErrorKind)
	b = append(b, "}\n"...)

	if _, err := e.w.Write(b); err != nil {
		e.writeErrs.Add(1)
	}
	if cap(b) <= 64<<10 { // don't pin a buffer grown by a freak line
		e.buf = b
	}
}

// WriteErrors returns how many lines failed to write.
func (e *EMF) WriteErrors() uint64 { return e.writeErrs.Load() }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func appendKey(b []byte, k string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func appendInt(b []byte, k string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, k), v, 10)
}

func appendMillis(b []byte, k string, d time.Duration) []byte {
	return strconv.AppendFloat(appendKey(b, k), float64(d)/float64(time.Millisecond), 'f', -1, 64)
}

func appendFloat(b []byte, k string, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) { // not representable in JSON
		v = 0
	}
	return strconv.AppendFloat(appendKey(b, k), v, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, truncated to maxValueLen bytes at
// a rune boundary, with invalid UTF-8 replaced by U+FFFD so the line always
// parses.
func appendString(b []byte, s string) []byte {
	if len(s) > maxValueLen {
		n := maxValueLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
