package cache

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
)

// Entry is one stored answer.
type Entry struct {
	Answer answer.Answer `json:"answer"`
	// Created is when the answer was generated, so a hit can say how old it is.
	Created time.Time `json:"created"`
}

// Store keeps entries for a time. Implementations are safe for concurrent
// use and never return an entry past its time to live.
type Store interface {
	// Get returns the entry under key, or nil if there is none.
	Get(ctx context.Context, key string) (*Entry, error)
	// Put stores e under key for ttl, replacing what was there. An entry
	// whose encoding exceeds MaxEntryBytes is refused with ErrTooLarge.
	Put(ctx context.Context, key string, e *Entry, ttl time.Duration) error
}

// MaxEntryBytes bounds an encoded (compressed) entry. Larger answers are not
// cached: at this size the upstream call is no longer the slow part of
// serving them, and they would take many items to store.
const MaxEntryBytes = 2 << 20

// ErrTooLarge refuses an entry over MaxEntryBytes.
var ErrTooLarge = errors.New("cache: entry too large to store")

// Encoding formats, the first byte of an encoded entry.
const (
	formatJSON = 'j' // plain JSON: small entries, where gzip would only add
	formatGzip = 'z' // gzip-compressed JSON
)

// compressAbove is the size from which entries are compressed.
const compressAbove = 1 << 10

// encode serializes e, compressed when that pays.
func encode(e *Entry) ([]byte, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("cache: encode: %w", err)
	}
	if len(raw) < compressAbove {
		return append([]byte{formatJSON}, raw...), nil
	}
	var b bytes.Buffer
	b.WriteByte(formatGzip)
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // the level is valid
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("cache: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("cache: compress: %w", err)
	}
	if b.Len() > MaxEntryBytes {
		return nil, ErrTooLarge
	}
	return b.Bytes(), nil
}

// maxDecoded bounds what decoding may inflate to, so a corrupt or hostile
// item cannot exhaust memory.
const maxDecoded = 64 << 20

func decode(data []byte) (*Entry, error) {
	if len(data) == 0 {
		return nil, errors.New("cache: decode: empty entry")
	}
	raw := data[1:]
	switch data[0] {
	case formatJSON:
	case formatGzip:
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("cache: decode: %w", err)
		}
		if raw, err = io.ReadAll(io.LimitReader(zr, maxDecoded)); err != nil {
			return nil, fmt.Errorf("cache: decode: %w", err)
		}
	default:
		return nil, fmt.Errorf("cache: decode: unknown format %q", data[0])
	}
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("cache: decode: %w", err)
	}
	return &e, nil
}
