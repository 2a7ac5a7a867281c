// Package sse reads and writes Server-Sent Events as the WHATWG spec defines
// them: LF, CRLF or CR line endings, multi-line data, comments, named events.
// Both sides reuse their buffers so relaying a stream does not allocate per
// event.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned when one event exceeds the reader's size limit.
var ErrTooLarge = errors.New("sse: event exceeds size limit")

// DefaultMaxEventSize bounds one event so a broken upstream cannot make the
// reader buffer without end.
const DefaultMaxEventSize = 4 << 20

// Event is one dispatched event. Its slices are only valid until the next
// call to Reader.Next.
type Event struct {
	Type []byte // the event field; empty means "message"
	Data []byte // data lines joined by '\n'
	ID   []byte
}

// maxFieldLen bounds an event's type and id: no upstream needs more, and
// bounding them leaves data the only field that grows with the event.
const maxFieldLen = 1 << 10

// Reader parses events from a byte stream.
type Reader struct {
	r       io.Reader
	buf     []byte // unread input is buf[start:end]
	start   int
	end     int
	skipLF  bool // the previous line ended in CR; a following LF belongs to it
	err     error
	done    error // what ended the stream, returned again by every later Next
	max     int
	typ     []byte
	data    []byte
	id      []byte
	hasData bool
	acct    account
}

// NewReader returns a Reader with the default event size limit. Over a body
// wrapped by BudgetedBody, it draws on that budget for what it buffers
// beyond FreeBytes.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{r: r, buf: make([]byte, 8192), max: DefaultMaxEventSize}
	if bb, ok := r.(*budgetedBody); ok {
		rd.acct.b = bb.b
		bb.attach(rd)
	}
	return rd
}

// SetMaxEventSize changes the limit on one event's size.
func (r *Reader) SetMaxEventSize(n int) { r.max = n }

// Next returns the next event. At the end of the stream it returns io.EOF if
// the stream ended on an event boundary and io.ErrUnexpectedEOF if it was cut
// inside an event (the partial event is discarded, as the spec says).
//
// Any error ends the stream: Next returns it again from then on, and the
// reader gives its buffers (and their budget) back.
func (r *Reader) Next() (Event, error) {
	if r.done != nil {
		return Event{}, r.done
	}
	e, err := r.next()
	if err != nil {
		r.done = err
		r.buf, r.data, r.start, r.end = nil, nil, 0, 0
		r.acct.close()
	}
	return e, err
}

func (r *Reader) next() (Event, error) {
	r.typ, r.data, r.id, r.hasData = r.typ[:0], r.data[:0], r.id[:0], false
	pending := false // a field was seen since the last dispatch
	for {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && pending {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if !pending {
				continue
			}
			if !r.hasData {
				// An event with no data is not dispatched; reset and go on.
				r.typ, r.id, pending = r.typ[:0], r.id[:0], false
				continue
			}
			return Event{Type: r.typ, Data: r.data, ID: r.id}, nil
		}
		if line[0] == ':' {
			continue // comment, often a keep-alive
		}
		pending = true
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			n := len(r.data) + len(value)
			if r.hasData {
				n++
			}
			if n > r.max {
				return Event{}, ErrTooLarge
			}
			if err := r.reserveData(n); err != nil {
				return Event{}, err
			}
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			if len(value) > maxFieldLen {
				return Event{}, ErrTooLarge
			}
			r.typ = append(r.typ[:0], value...)
		case "id":
			if len(value) > maxFieldLen {
				return Event{}, ErrTooLarge
			}
			if bytes.IndexByte(value, 0) < 0 {
				r.id = append(r.id[:0], value...)
			}
		}
		// retry and unknown fields are ignored.
	}
}

// Buffered reports whether a complete event is already buffered, so the
// next call to Next will not wait for input.
func (r *Reader) Buffered() bool {
	rest := r.buf[r.start:r.end]
	return bytes.Contains(rest, []byte("\n\n")) || bytes.Contains(rest, []byte("\r\r")) || bytes.Contains(rest, []byte("\n\r\n"))
}

// line returns the next line without its terminator. The slice aliases the
// internal buffer and is valid until the next call.
func (r *Reader) line() ([]byte, error) {
	scanned := 0
	for {
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				r.start++
			}
			r.skipLF = false
		}
		window := r.buf[r.start+scanned : r.end]
		if i := bytes.IndexAny(window, "\r\n"); i >= 0 {
			i += r.start + scanned
			line := r.buf[r.start:i]
			r.skipLF = r.buf[i] == '\r'
			r.start = i + 1
			return line, nil
		}
		scanned = r.end - r.start
		if r.err != nil {
			if r.end > r.start {
				// A final line with no terminator never completes an event.
				r.start = r.end
				return nil, io.ErrUnexpectedEOF
			}
			return nil, r.err
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

func (r *Reader) fill() error {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= r.max+2 {
			return ErrTooLarge
		}
		size := min(2*len(r.buf), r.max+2)
		if err := r.acct.charge(size + cap(r.data)); err != nil {
			return err
		}
		nb := make([]byte, size)
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.err = err
	}
	return nil
}

// reserveData makes room for n bytes of event data, charging the budget
// before the memory is taken.
func (r *Reader) reserveData(n int) error {
	if n <= cap(r.data) {
		return nil
	}
	size := min(max(n, 2*cap(r.data), 512), r.max)
	if err := r.acct.charge(len(r.buf) + size); err != nil {
		return err
	}
	nd := make([]byte, len(r.data), size)
	copy(nd, r.data)
	r.data = nd
	return nil
}

// AppendData appends one "data:" event carrying payload. Newlines in the
// payload become separate data lines, so any payload round-trips.
func AppendData(dst, payload []byte) []byte {
	for {
		i := bytes.IndexAny(payload, "\r\n")
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, payload...)
			break
		}
		dst = append(dst, payload[:i]...)
		dst = append(dst, '\n')
		if payload[i] == '\r' && i+1 < len(payload) && payload[i+1] == '\n' {
			i++
		}
		payload = payload[i+1:]
	}
	return append(dst, '\n', '\n')
}

// AppendEvent appends a named event.
func AppendEvent(dst []byte, typ string, payload []byte) []byte {
	if typ != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, typ...)
		dst = append(dst, '\n')
	}
	return AppendData(dst, payload)
}

// Done is the terminator OpenAI-compatible streams end with.
var Done = []byte("data: [DONE]\n\n")

// String renders an event for debugging.
func (e Event) String() string {
	return fmt.Sprintf("event=%q id=%q data=%q", e.Type, e.ID, e.Data)
}
