package embedding

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MessageVersion is the version of the queued message format this build
// reads. A message without a version is read as version 1.
const MessageVersion = 1

// Message is the body of one queued message (format version 1): one or
// many documents for one embedding model. A single document may also be
// written flat: {"id": ..., "text": ..., "metadata": ..., "model": ...}.
type Message struct {
	Version   int        `json:"version"`
	Model     string     `json:"model"`
	Documents []Document `json:"documents"`
	// Chunking overrides the configured chunking for this message;
	// max_tokens 0 turns it off.
	Chunking *Chunking `json:"chunking"`

	// The single-document shorthand.
	ID       string         `json:"id"`
	Text     string         `json:"text"`
	Metadata map[string]any `json:"metadata"`
}

// Document is one text to embed under a caller-chosen id.
type Document struct {
	ID       string         `json:"id"`
	Text     string         `json:"text"`
	Metadata map[string]any `json:"metadata"`
}

// Chunking splits long texts by (estimated) tokens, neighbours sharing
// Overlap tokens.
type Chunking struct {
	MaxTokens int `json:"max_tokens"`
	Overlap   int `json:"overlap"`
}

// Limits on a message, far inside what SQS (256 KiB) and S3 Vectors (keys
// of 1,024 bytes) allow, so a message that passes fits everywhere.
const (
	MaxDocuments = 1000
	MaxIDBytes   = 900 // room for the "#<chunk>" suffix under 1,024
)

// Reserved metadata names: sluice writes them on every vector.
var reservedMetadata = map[string]bool{"doc_id": true, "chunk": true, "model": true, "dimensions": true,
	"content_hash": true, "updated_at": true, "embedding_space": true}

// Piece is one text to embed: a whole document, or one chunk of it.
type Piece struct {
	Key        string // the vector's key: the document id, or "<id>#<n>" for chunks
	DocumentID string
	Chunk      int // 0-based; 0 for an unchunked document
	Chunked    bool
	Text       string
	Hash       string // SHA-256 of Text, hex
	Metadata   map[string]any
}

// ParseMessage reads a message body. Its errors say what is wrong without
// quoting document text, so they can be logged.
func ParseMessage(body []byte) (*Message, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty message body")
	}
	var m Message
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a valid message: %s", jsonError(err))
	}
	if dec.More() {
		return nil, errors.New("not a valid message: trailing data after the JSON object")
	}
	if m.Version == 0 {
		m.Version = 1
	}
	if m.Version != MessageVersion {
		return nil, fmt.Errorf("unsupported message version %d (this build reads version %d)", m.Version, MessageVersion)
	}
	flat := m.ID != "" || m.Text != "" || m.Metadata != nil
	switch {
	case flat && len(m.Documents) > 0:
		return nil, errors.New("a message has either documents or a flat id/text, not both")
	case flat:
		m.Documents = []Document{{ID: m.ID, Text: m.Text, Metadata: m.Metadata}}
		m.ID, m.Text, m.Metadata = "", "", nil
	case len(m.Documents) == 0:
		return nil, errors.New("missing field: documents (or a flat id and text)")
	case len(m.Documents) > MaxDocuments:
		return nil, fmt.Errorf("%d documents in one message; at most %d", len(m.Documents), MaxDocuments)
	}
	if c := m.Chunking; c != nil && (c.MaxTokens < 0 || c.Overlap < 0 || (c.MaxTokens > 0 && c.Overlap >= c.MaxTokens)) {
		return nil, errors.New("chunking: max_tokens and overlap must not be negative, and overlap must be below max_tokens")
	}
	for i, d := range m.Documents {
		f := "documents[" + strconv.Itoa(i) + "]"
		switch {
		case d.ID == "":
			return nil, fmt.Errorf("missing field: %s.id", f)
		case len(d.ID) > MaxIDBytes || !utf8.ValidString(d.ID) || strings.ContainsAny(d.ID, "\x00#"):
			return nil, fmt.Errorf("%s.id must be valid UTF-8 of at most %d bytes without '#' (it suffixes chunk numbers)", f, MaxIDBytes)
		case strings.TrimSpace(d.Text) == "":
			return nil, fmt.Errorf("missing field: %s.text (document %q)", f, d.ID)
		case !utf8.ValidString(d.Text):
			return nil, fmt.Errorf("%s.text is not valid UTF-8 (document %q)", f, d.ID)
		}
		for k := range d.Metadata {
			if reservedMetadata[k] {
				return nil, fmt.Errorf("%s.metadata.%s is reserved: sluice writes it on every vector", f, k)
			}
		}
	}
	return &m, nil
}

// Pieces splits the message's documents into the texts to embed.
// chunkTokens 0 keeps documents whole.
func (m *Message) Pieces(chunkTokens, overlap int) []Piece {
	if c := m.Chunking; c != nil {
		chunkTokens, overlap = c.MaxTokens, c.Overlap
	}
	var out []Piece
	for _, d := range m.Documents {
		if chunkTokens <= 0 {
			out = append(out, Piece{Key: d.ID, DocumentID: d.ID, Text: d.Text, Hash: Hash(d.Text), Metadata: d.Metadata})
			continue
		}
		// Chunked documents always key as "<id>#<n>", even when one chunk
		// holds them, so a document that grows keeps its scheme.
		for n, text := range Chunk(d.Text, chunkTokens, overlap) {
			out = append(out, Piece{Key: d.ID + "#" + strconv.Itoa(n), DocumentID: d.ID, Chunk: n, Chunked: true,
				Text: text, Hash: Hash(text), Metadata: d.Metadata})
		}
	}
	return out
}

// Hash is the content hash recorded with a vector and checked for
// idempotency.
func Hash(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

// jsonError describes a decoding error by position and field, never by
// the content around it.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return "invalid JSON"
}
