package rie

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What the emulator prints, and where. stdout carries Lambda's own lines
// (START, END, REPORT) and everything the function prints; stderr carries
// the emulator's logs, which at debug level show each runtime API call.
// These patterns are tied to the pinned Version.
var (
	reStart     = regexp.MustCompile(`^START RequestId: (\S+)`)
	reEnd       = regexp.MustCompile(`^END RequestId: (\S+)`)
	reReport    = regexp.MustCompile(`^REPORT RequestId: (\S+)\t(.*)$`)
	reInvokeBeg = regexp.MustCompile(`INVOKE START\(requestId: ([^)]+)\)`)
	reRTDone    = regexp.MustCompile(`INVOKE RTDONE\(`)
	reInitRep   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	// The runtime's POST of the result: /response or /error, with headers.
	rePost     = regexp.MustCompile(`API request - POST /2018-06-01/runtime/invocation/([^/]+)/(response|error), Headers:map\[(.*)\]$`)
	reCType    = regexp.MustCompile(`Content-Type:\[([^\]]*)\]`)
	reAPIUp    = regexp.MustCompile(`Runtime API Server listening on`)
	reDataRace = regexp.MustCompile(`WARNING: DATA RACE`)
)

type stream int

const (
	fromStdout stream = iota
	fromStderr
)

// perRequest is what the logs said about one invocation.
type perRequest struct {
	report     string // the REPORT line's fields
	reported   bool
	rtdone     bool
	posted     string // "response" or "error"
	ctype      string
	logs       []string
	initMillis float64 // rapid's INIT REPORT, when this invocation started the runtime
	race       bool
}

type logState struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every parsed line
	out     io.Writer
	lines   []string
	reqs    map[string]*perRequest
	stdoutR string // request whose START/END we are inside on stdout
	stderrR string // request rapid is working on (INVOKE START)
	apiUp   bool
	pending float64 // INIT REPORT seen, waiting for its INVOKE START
	closed  bool
}

func newLogState(out io.Writer) *logState {
	if out == nil {
		out = io.Discard
	}
	return &logState{changed: make(chan struct{}), out: out, reqs: map[string]*perRequest{}}
}

// writer returns an io.Writer that splits its input into lines for one stream.
func (s *logState) writer(src stream) io.Writer { return &lineWriter{s: s, src: src} }

type lineWriter struct {
	s   *logState
	src stream
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.s.line(w.src, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (s *logState) req(id string) *perRequest {
	r := s.reqs[id]
	if r == nil {
		r = &perRequest{}
		s.reqs[id] = r
	}
	return r
}

func (s *logState) line(src stream, l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.out, l+"\n")
	s.lines = append(s.lines, l)
	if len(s.lines) > 20000 { // a chatty function must not grow this forever
		s.lines = s.lines[len(s.lines)-10000:]
	}
	switch src {
	case fromStdout:
		switch {
		case reStart.MatchString(l):
			s.stdoutR = reStart.FindStringSubmatch(l)[1]
		case reEnd.MatchString(l):
			s.stdoutR = ""
		case reReport.MatchString(l):
			m := reReport.FindStringSubmatch(l)
			r := s.req(m[1])
			r.report, r.reported = m[2], true
		default:
			if s.stdoutR != "" {
				r := s.req(s.stdoutR)
				r.logs = append(r.logs, l)
				if reDataRace.MatchString(l) {
					r.race = true
				}
			}
		}
	case fromStderr:
		switch {
		case reAPIUp.MatchString(l):
			s.apiUp = true
		case reInvokeBeg.MatchString(l):
			s.stderrR = reInvokeBeg.FindStringSubmatch(l)[1]
			// rapid logs INIT REPORT just before the INVOKE START of the
			// invocation that started the runtime, on the same stream.
			if s.pending > 0 {
				s.req(s.stderrR).initMillis, s.pending = s.pending, 0
			}
		case reRTDone.MatchString(l):
			if s.stderrR != "" {
				s.req(s.stderrR).rtdone = true
			}
		case reInitRep.MatchString(l):
			s.pending, _ = strconv.ParseFloat(reInitRep.FindStringSubmatch(l)[1], 64)
		case rePost.MatchString(l):
			m := rePost.FindStringSubmatch(l)
			r := s.req(m[1])
			r.posted = m[2]
			if c := reCType.FindStringSubmatch(m[3]); c != nil {
				r.ctype = c[1]
			}
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *logState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *logState) runtimeAPIUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiUp
}

// await blocks until the REPORT line and rapid's RTDONE for id have been read.
func (s *logState) await(ctx context.Context, id string, guard time.Duration, exited <-chan struct{}) error {
	timer := time.NewTimer(guard)
	defer timer.Stop()
	for {
		s.mu.Lock()
		r := s.reqs[id]
		done := r != nil && r.reported && r.rtdone
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if done {
			return nil
		}
		if closed {
			return errors.New("emulator exited before it reported the invocation")
		}
		select {
		case <-ch:
		case <-exited:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return errors.New("no REPORT line for the invocation (hang guard)")
		}
	}
}

// fill copies what the logs said about res.RequestID into res.
func (s *logState) fill(res *Result, parsePayloadError bool) {
	s.mu.Lock()
	r := s.reqs[res.RequestID]
	var copyR perRequest
	if r != nil {
		copyR = *r
		copyR.logs = append([]string(nil), r.logs...)
	}
	s.mu.Unlock()
	res.Logs = copyR.logs
	res.ResponseContentType = copyR.ctype
	res.DataRace = copyR.race
	res.Report = parseReport(copyR.report)
	if copyR.initMillis > 0 {
		res.RuntimeInit = time.Duration(copyR.initMillis * float64(time.Millisecond))
	}
	if parsePayloadError && copyR.posted == "error" {
		res.Error = parseFunctionError(res.Payload)
	}
}

func (s *logState) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := max(len(s.lines)-n, 0)
	return strings.Join(s.lines[from:], "\n")
}

func (s *logState) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}
